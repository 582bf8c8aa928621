"""The duallens trainer on the shared loop: stereo rendered on the fly, validation on held-aside stills, export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import textured_scene

torch = pytest.importorskip("torch")

from streamfuse.data.manifest import DatasetManifest  # noqa: E402
from streamfuse.engines.assets import load_engine_manifest  # noqa: E402
from streamfuse.models import duallens_arch  # noqa: E402
from streamfuse.train import duallens  # noqa: E402
from streamfuse.train.loop import fit  # noqa: E402

TINY = {"n": 4, "blocks": 1, "stride": 4, "levels": 1, "max_disp": 16, "min_disp": 0, "residue_n": 4}


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> None:
    """A tiny config and a few generated stills (train and held-aside), so a step takes milliseconds."""
    monkeypatch.setitem(duallens_arch.CONFIGS, "duallens-test", {**TINY, "residue_blocks": 1})
    stills = [textured_scene(96, 128, seed=i) for i in range(4)]
    monkeypatch.setattr(duallens, "stereo_stills", lambda: (stills[:3], stills[3:], DatasetManifest(kind="stereo")))


def test_trains_validates_and_exports_an_engine(tiny: None, tmp_path: Path) -> None:
    from streamfuse.engines import load_engine

    cfg = duallens.DualLensConfig(
        model="duallens-test",
        out=str(tmp_path / "run"),
        size="64x48",
        batch=2,
        epochs=1,
        steps_per_epoch=2,
        train_disp=8,
        val_batches=1,
    )
    summary = fit("duallens", cfg, device="cpu", progress=False, export=tmp_path / "engine")
    assert summary.status == "done" and [h["epoch"] for h in summary.history] == [0, 1]
    assert np.isfinite(summary.history[-1]["chroma_psnr"])
    manifest, folder = load_engine_manifest(tmp_path / "engine", engine="duallens")
    assert manifest.graphs == {"model": "duallens-test.onnx"} and manifest.arch["max_disp"] == 16
    assert manifest.parity["model"] <= 1 and manifest.validation["chroma_psnr"] == summary.best["chroma_psnr"]
    eng = load_engine("duallens", model=str(folder), threads=1)
    scene = textured_scene(48, 80, seed=9)
    assert eng.colorize(scene[:, 8:72, 0], eng.prepare_reference(scene[:, :64])).shape == (48, 64, 3)


def test_cli_stops_at_the_time_budget_then_resumes_and_exports(
    tiny: None, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from streamfuse.cli import main

    config = tmp_path / "t.yaml"
    config.write_text(
        f"model: duallens-test\nout: {tmp_path / 'run'}\nsize: 64x48\nbatch: 2\nepochs: 1\n"
        "steps_per_epoch: 2\ntrain_disp: 8\nval_batches: 1\n"
    )
    args = ["train", "duallens", "--config", str(config), "--device", "cpu", "--no-progress"]
    assert main([*args, "--max-minutes", "0"]) == 0
    out = capsys.readouterr().out
    assert "stopped at the time budget after 0 epochs (0 steps" in out and "--resume" in out
    assert main([*args, "--resume", "--export", str(tmp_path / "engine")]) == 0
    out = capsys.readouterr().out
    assert "trained 1 epochs (2 steps" in out and f"exported {tmp_path / 'engine'}" in out
    manifest, _ = load_engine_manifest(tmp_path / "engine", engine="duallens")
    assert manifest.command == f"streamfuse train duallens --config {config} --export {tmp_path / 'engine'}"
    assert manifest.train_config["config_file"] == str(config)


def test_train_help_lists_every_learned_engine_and_bad_configs_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from streamfuse.cli import main

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help_text = capsys.readouterr().out
    assert "ccdc" in help_text and "duallens" in help_text and "--max-minutes" in help_text
    (tmp_path / "bad.yaml").write_text("modle: duallens\n")
    assert main(["train", "duallens", "--config", str(tmp_path / "bad.yaml")]) == 2
    err = capsys.readouterr().err
    assert "unknown key(s) modle" in err and "Traceback" not in err and err.count("\n") == 1

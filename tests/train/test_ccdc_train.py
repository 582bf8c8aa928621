"""The ccdc trainer on the shared loop: a tiny synthesized dataset, checkpoints, resume, export the engine loads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import textured_scene

from streamfuse.data import synth

torch = pytest.importorskip("torch")

from streamfuse.engines.assets import load_engine_manifest  # noqa: E402
from streamfuse.train import ccdc  # noqa: E402
from streamfuse.train.ccdc import CCDCConfig  # noqa: E402
from streamfuse.train.loop import fit  # noqa: E402


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    stills = [(f"s{i}", textured_scene(200, 240, seed=i)) for i in range(3)]
    opt = synth.SynthOptions(size=(128, 128), frames=3, blur_prob=0.0, crf=(23, 23))
    synth.synthesize(root, 3, stills, opt, seed=0, val_fraction=0.34)
    return root


def _cfg(dataset: Path, out: Path, model: str, **kw) -> CCDCConfig:
    base = dict(model=model, data=str(dataset), out=str(out), scales=[4], gaps=[1, 2], val_gaps=[2], crop=64, batch=2)
    return CCDCConfig(**{**base, "epochs": 1, "steps_per_epoch": 2, **kw})


@pytest.mark.parametrize("model", ["ccdc-tiny", "ccdc-paper-tiny"])
def test_a_few_steps_train_checkpoint_and_resume(dataset: Path, tmp_path: Path, model: str) -> None:
    first = fit("ccdc", _cfg(dataset, tmp_path / "run", model), device="cpu", progress=False)
    assert first.epochs == 1 and (tmp_path / "run" / "last.pt").is_file()
    val = first.history[-1]
    assert np.isfinite(val["mean"]) and "x4_gap2" in val
    second = fit("ccdc", _cfg(dataset, tmp_path / "run", model, epochs=2), device="cpu", resume=True, progress=False)
    assert [h["epoch"] for h in second.history] == [0, 1, 2]  # resumed, not restarted


def test_export_writes_an_engine_folder_the_engine_loads(dataset: Path, tmp_path: Path) -> None:
    from streamfuse.engines import load_engine

    cfg = _cfg(dataset, tmp_path / "run", "ccdc-tiny", gaps=[1], val_gaps=[1], steps_per_epoch=1)
    summary = fit("ccdc", cfg, device="cpu", progress=False, export=tmp_path / "engine", command="test")
    assert summary.exported
    manifest, _ = load_engine_manifest(tmp_path / "engine", engine="ccdc")
    assert manifest.command == "test" and manifest.epochs == 1 and manifest.data["sequences"] == 3
    assert manifest.classical_stage["engine"] == "guided" and manifest.pad_multiple == 32
    assert manifest.options["detail"] in (0.0, 0.25, 0.5, 1.0) and manifest.parity["model"] <= 1
    assert manifest.validation["mean"] == summary.best["mean"] and manifest.device == "cpu"
    eng = load_engine("ccdc", model=str(tmp_path / "engine"), threads=1)
    ref = textured_scene(24, 32, seed=1)
    out = eng.colorize(textured_scene(96, 128, seed=1)[..., 0], eng.prepare_reference(ref))
    assert out.shape == (96, 128, 3)


def test_trains_on_several_datasets_and_names_them_all(dataset: Path, tmp_path: Path) -> None:
    second = tmp_path / "more"
    opt = synth.SynthOptions(size=(128, 128), frames=3, blur_prob=0.0, crf=(23, 23))
    stills = [(f"t{i}", textured_scene(200, 240, seed=9 + i)) for i in range(2)]
    synth.synthesize(second, 2, stills, opt, seed=1, val_fraction=0.5)
    cfg = _cfg(dataset, tmp_path / "run", "ccdc-tiny", data=[str(dataset), str(second)])
    one = _cfg(dataset, tmp_path / "one", "ccdc-tiny")
    both_pairs, one_pairs = (len(ccdc.build_cache(c, progress=False)["train"]) for c in (cfg, one))
    assert both_pairs > one_pairs  # the second folder's sequences are in
    record = ccdc.CCDCTrainer().data_manifest(cfg)["datasets"]
    assert [d["folder"] for d in record] == [str(dataset), str(second)] and record[1]["sequences"] == 2
    assert fit("ccdc", cfg, device="cpu", progress=False).status == "done"


def test_unknown_model_is_named(dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown ccdc model 'nope'; choose one of .*ccdc-tiny"):
        fit("ccdc", _cfg(dataset, tmp_path / "run", "nope"), device="cpu", progress=False)

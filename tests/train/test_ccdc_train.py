"""The CCDC training loop runs end to end on a tiny synthesized dataset: checkpoints, validation, resume, export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import textured_scene

from streamfuse.data import synth

torch = pytest.importorskip("torch")

from streamfuse.train.ccdc import TrainConfig, load_config, run, train  # noqa: E402


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    stills = [(f"s{i}", textured_scene(200, 240, seed=i)) for i in range(3)]
    opt = synth.SynthOptions(size=(128, 128), frames=3, blur_prob=0.0, crf=(23, 23))
    synth.synthesize(root, 3, stills, opt, seed=0, val_fraction=0.34)
    return root


@pytest.mark.parametrize("model", ["ccdc-tiny", "ccdc-paper-tiny"])
def test_a_few_steps_train_checkpoint_and_resume(dataset: Path, tmp_path: Path, model: str) -> None:
    cfg = TrainConfig(
        model=model,
        data=str(dataset),
        out=str(tmp_path / "run"),
        scales=[4],
        gaps=[1, 2],
        val_gaps=[2],
        crop=64,
        batch=2,
        epochs=1,
        steps_per_epoch=2,
    )
    first = train(cfg, progress=False)
    assert first["epochs"] == 1 and (tmp_path / "run" / "last.pt").is_file()
    val = first["history"][-1]
    assert np.isfinite(val["mean"]) and "x4_gap2" in val
    cfg.epochs = 2
    second = train(cfg, resume=True, progress=False)
    assert [h["epoch"] for h in second["history"]] == [0, 1, 2]  # resumed, not restarted


def test_run_exports_an_engine_folder_the_engine_loads(dataset: Path, tmp_path: Path) -> None:
    from streamfuse.engines import load_engine

    cfg = TrainConfig(
        model="ccdc-tiny",
        data=str(dataset),
        out=str(tmp_path / "run"),
        scales=[4],
        gaps=[1],
        val_gaps=[1],
        crop=64,
        batch=2,
        epochs=1,
        steps_per_epoch=1,
    )
    run(cfg, export_dir=str(tmp_path / "engine"), command="test")
    manifest = json.loads((tmp_path / "engine" / "manifest.json").read_text())
    assert manifest["command"] == "test" and manifest["epochs"] == 1 and manifest["data"]["sequences"] == 3
    eng = load_engine("ccdc", model=str(tmp_path / "engine"), threads=1)
    ref = textured_scene(24, 32, seed=1)
    out = eng.colorize(textured_scene(96, 128, seed=1)[..., 0], eng.prepare_reference(ref))
    assert out.shape == (96, 128, 3)


def test_config_with_an_unknown_key_names_it(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("model: ccdc\nlearning_rate: 0.1\n")
    with pytest.raises(ValueError, match="learning_rate"):
        load_config(path)

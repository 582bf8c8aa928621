"""CoColor trainers on the shared loop: held-aside categories, both configs train, export, and load as engines."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from nirpairs import make_nir_folder  # noqa: E402

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from streamfuse.data import nir as nirdata  # noqa: E402
from streamfuse.engines.cocolor import CoColorEngine, CoColorPaperEngine  # noqa: E402
from streamfuse.train.cocolor import CoColorConfig, CoColorPaperConfig, CoColorTrainer  # noqa: E402
from streamfuse.train.loop import fit  # noqa: E402


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_nir_folder(tmp_path_factory.mktemp("nir-train"))


def test_splits_hold_whole_categories_aside(folder):
    train = nirdata.load_pairs("train", folder)
    val = nirdata.load_pairs("val", folder)
    assert {p.category for p in train} == set(nirdata.TRAIN)
    assert {p.category for p in val} == set(nirdata.HELD_OUT)
    assert not {p.category for p in train} & {p.category for p in val}
    for p in train + val:  # aligned and cropped: no black warp border, sides divisible by 4
        assert p.rgb.shape[:2] == p.nir.shape and p.nir.shape[0] % 4 == 0 and p.nir.shape[1] % 4 == 0
        assert p.rgb.reshape(-1, 3).max(axis=1).min() > 0


def test_batches_have_the_protocol_shapes(folder):
    trainer = CoColorTrainer()
    cfg = CoColorConfig(data=str(folder), variants=1, synthetic=False, crop=16, batch=3, prior_crop=32, prior_batch=2)
    data = trainer.make_data(cfg, "train")
    ref, nir_r, truth_r, prior, nir_p, truth_p = trainer.batch(data, cfg, np.random.default_rng(0))
    assert ref.shape == (3, 11, 16, 16) and prior.shape == (2, 2, 32, 32)
    assert nir_r.shape == (3, 1, 64, 64) and truth_r.shape == (3, 3, 64, 64)
    assert nir_p.shape == (2, 1, 128, 128) and truth_p.shape == (2, 3, 128, 128)


def test_fast_trainer_fits_exports_and_loads(folder, tmp_path):
    cfg = CoColorConfig(
        out=str(tmp_path / "run"), data=str(folder), variants=1, synthetic=False, crop=16, batch=2,
        prior_crop=32, prior_batch=1, epochs=1, steps_per_epoch=3,
    )  # fmt: skip
    summary = fit("cocolor", cfg, device="cpu", export=tmp_path / "engine", progress=False)
    assert summary.status == "done" and summary.step == 3
    assert {"ref_psnr_rgb", "prior_psnr_rgb"} <= set(summary.best)
    eng = CoColorEngine(model=str(tmp_path / "engine"))
    assert eng.manifest.data["held_out_categories"] == list(nirdata.HELD_OUT)
    pair = nirdata.load_pairs("val", folder)[0]
    assert eng.colorize(pair.nir, None).shape == pair.rgb.shape


def test_paper_trainer_runs_all_three_phases(folder, tmp_path):
    cfg = CoColorPaperConfig(
        out=str(tmp_path / "run"), data=str(folder), synthetic=False, crop=32, batch=1,
        epochs=1, steps_per_epoch=3, phase1=1, phase2=1,
    )  # fmt: skip
    summary = fit("cocolor-paper", cfg, device="cpu", export=tmp_path / "engine", progress=False)
    assert summary.status == "done"
    weights = torch.load(tmp_path / "engine" / "weights.pt", weights_only=False)
    assert int(weights["model"]["step"]) == 3  # one step in each phase
    eng = CoColorPaperEngine(model=str(tmp_path / "engine"))
    pair = nirdata.load_pairs("val", folder)[0]
    assert eng.colorize(pair.nir, None).shape == pair.rgb.shape

"""Pik-Fix training: samples as the paper builds them, the paper's losses, a short run on the shared loop for both
configs, and an exported folder the engines load."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import textured_scene

from streamfuse.engines import load_engine
from streamfuse.models.pikfix_arch import SPHist
from streamfuse.train.loop import fit
from streamfuse.train.pikfix import PikFixConfig, RandomFeatures, SampleMaker, emd_loss, export_run, perceptual


def test_samples_have_the_network_layout():
    stills = [textured_scene(160, 200, seed=s) for s in range(3)]
    for model, n in (("fast", 2), ("paper", 6)):
        maker = SampleMaker(stills, [], PikFixConfig(model=model, crop=64))
        item = maker.sample(np.random.default_rng(0))
        assert len(item) == n
        assert item[0].shape == (2, 64, 64) and item[1].shape == (1, 64, 64)
        assert all(a.dtype == np.float32 for a in item)
    degraded, truth, ref = maker.triple(np.random.default_rng(1))
    assert degraded.shape == (64, 64) and truth.shape == ref.shape == (64, 64, 3)
    assert not np.array_equal(ref, truth)


def test_losses_vanish_on_identical_inputs_only():
    hist, phi = SPHist(8), RandomFeatures()
    a = torch.rand(2, 2, 16, 16) - 0.5
    assert float(emd_loss(hist, a, a).detach()) < 1e-8
    assert float(emd_loss(hist, a, a * 0.2 + 0.3)) > 1e-3
    y = torch.rand(2, 1, 16, 16)
    assert float(perceptual(phi, y, y)) == 0.0
    assert float(perceptual(phi, y, 1 - y)) > 0.0


@pytest.fixture
def few_stills(monkeypatch):
    """Three generated stills (plus the validation ones by name) instead of every package still, to stay fast."""
    from streamfuse.data import stills
    from streamfuse.data.oldfilm import VAL_STILLS

    scenes = [(f"test:{s}", textured_scene(160, 200, seed=s)) for s in range(3)]
    scenes += [(name, textured_scene(160, 200, seed=10 + i)) for i, name in enumerate(VAL_STILLS)]
    monkeypatch.setattr(stills, "package_stills", lambda *a, **k: scenes)
    monkeypatch.setattr("streamfuse.data.video.training_videos", lambda *a, **k: [])


@pytest.mark.parametrize("model", ["fast", "paper"])
def test_short_run_exports_a_loadable_engine(tmp_path, model, few_stills):
    cfg = PikFixConfig(
        model=model,
        out=str(tmp_path / "run"),
        epochs=1,
        steps_per_epoch=2,
        batch=2,
        crop=32,
        val_samples=2,
        video_share=0.0,
        max_video_frames=0,
    )
    summary = fit("pikfix", cfg, device="cpu", export=tmp_path / "eng", progress=False)
    assert summary.status == "done" and summary.step == 2
    assert {"mean", "degraded"} <= set(summary.best)
    name = "pikfix" if model == "fast" else "pikfix-paper"
    eng = load_engine(name, model=str(tmp_path / "eng"), threads=1)
    img = textured_scene(48, 64)
    assert eng.colorize(np.full((48, 64), 100, np.uint8), img).shape == (48, 64, 3)
    if model == "fast":  # a run stopped by its time budget is exported from best.pt the same way
        manifest = export_run(tmp_path / "run", tmp_path / "eng2", command="test")
        assert manifest.train_config["steps_trained"] == 2 and manifest.data["stills"] == ["test:0", "test:1", "test:2"]

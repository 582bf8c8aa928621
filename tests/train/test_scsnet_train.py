"""SCSNet trainer: samples match the engine's inputs at any scale, references are warped or other frames, the
held-aside stills never enter training, both losses step, and the trainer is registered."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import textured_scene

torch = pytest.importorskip("torch")

from streamfuse.engines.scsnet import HINT_CHANNELS, output_size  # noqa: E402
from streamfuse.models.scsnet_arch import CONFIGS, build_model  # noqa: E402
from streamfuse.train import scsnet as scs  # noqa: E402
from streamfuse.train.registry import available_trainers  # noqa: E402


def _sampler(video: bool = False, **cfg) -> scs.Sampler:
    config = scs.SCSNetConfig(crop=48, **cfg)
    stills = {"test:a": textured_scene(120, 160, seed=1), "test:b": textured_scene(100, 140, seed=2)}
    videos = {}
    if video:
        frame = textured_scene(120, 160, seed=4)
        videos = {"clip": [(frame, np.roll(frame, 3, axis=1))]}
    return scs.Sampler(config, stills, videos, 0.5, np.random.default_rng(0))


@pytest.mark.parametrize("scale", [1.5, 3.3, 4.5])
@pytest.mark.parametrize("referential", [True, False])
def test_sample_shapes_follow_the_scale(scale: float, referential: bool) -> None:
    b = _sampler().batch(2, scale, referential)
    lh = max(8, round(48 / scale))
    out_h, out_w = output_size(lh, lh, scale)
    assert b["lr"].shape == (2, 4, lh, lh) and b["ref"].shape == (2, 3, lh, lh)
    assert b["hints"].shape == (2, out_h, out_w, HINT_CHANNELS) and b["target"].shape == (2, out_h, out_w, 3)
    mode = b["hints"][..., -1]
    assert bool((mode == (1.0 if referential else 0.0)).all())
    if not referential:  # automatic mode: no reference information at all
        assert float(b["lr"][:, 1:].abs().max()) == 0.0 and float(b["hints"][..., 1:7].abs().max()) == 0.0


def test_video_samples_use_another_frame_as_reference() -> None:
    sampler = _sampler(video=True, video_share=1.0, jitter_share=0.0)
    b = sampler.batch(1, 2.0, True)
    assert float((b["ref"] - scs._norm_ycc(np.zeros((4, 4, 3)))[..., :1, :1]).abs().mean()) > 0  # a real frame
    target_lr = b["target"][0, ::2, ::2, 0]
    assert target_lr.shape[0] == b["ref"].shape[2]


def test_held_aside_stills_are_not_training_stills(monkeypatch: pytest.MonkeyPatch) -> None:
    import streamfuse.data.stills as stills

    img = textured_scene(64, 64)
    monkeypatch.setattr(stills, "package_stills", lambda: [("opencv-doc:fruits.jpg", img), ("skimage:coffee", img)])
    assert list(scs.load_stills(480)) == ["skimage:coffee"]


@pytest.mark.parametrize("adv_weight", [0.0, 0.5])
def test_loss_steps_both_modes(adv_weight: float) -> None:
    cfg = scs.SCSNetConfig(crop=48, adv_weight=adv_weight)
    trainer = scs.SCSNetTrainer()
    net = trainer.build_model(cfg)
    sampler = _sampler()
    for referential in (True, False):
        loss = trainer.loss(net, (sampler.batch(2, 2.5, referential), referential))
        net.zero_grad()
        loss.backward()
        assert torch.isfinite(loss) and float(loss) > 0
        assert any(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in net.parameters())


def test_validation_reports_both_modes_against_their_base() -> None:
    cfg = scs.SCSNetConfig(crop=48)
    trainer = scs.SCSNetTrainer()
    net = build_model(CONFIGS["scsnet"]).eval()
    trainer.cfg = cfg
    sampler = _sampler()
    val = [(True, sampler.batch(1, 2.0, True)), (False, sampler.batch(1, 3.3, False))]
    with torch.no_grad():
        metrics = trainer.validate(net, val)
    assert {"ref", "auto", "ref_base", "auto_base", "mean"} <= set(metrics)
    assert metrics["ref"] == pytest.approx(metrics["ref_base"], abs=0.05)  # untrained: the residual is zero


def test_trainer_is_registered() -> None:
    assert "scsnet" in available_trainers()

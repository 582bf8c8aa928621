"""Train an SCSNet (``scsnet`` or ``scsnet-paper``) on package stills and allow-listed real video frames.

Samples, after the paper (Section 4.1) and issue 14, rendered on the fly:
- a target crop from a still (``streamfuse.data.stills``, benchmark excluded, the scsr protocol's held-aside
  stills excluded) or a frame of an allow-listed video (``streamfuse.data.video.training_videos``); the mono
  input is its BT.601 luma area-downsampled by a random scale s in [``min_scale``, ``max_scale``] (one per
  batch);
- the reference: on stills an elastic warp (Simard et al.) of the image, with a mild colour jitter on a share of
  samples; on video another frame of the same clip, 3 to 8 frames away; full size, over the same window;
- both modes alternately (``auto_share`` of the batches are automatic: no reference).
The network sees exactly the engine's inputs (``streamfuse.engines.scsnet.build_inputs`` after guided's
alignment stage).

Losses (paper Eq. 4): λ_C·L1 content loss on Y, Cb, Cr, and the relativistic average least-squares adversarial
loss (Eq. 7) with a small patch discriminator when ``adv_weight`` > 0 (the discriminator steps inside
``loss``). The VGG16 perceptual loss is left out: its pretrained weights cannot be downloaded here.

Run: ``nice -n 10 streamfuse train scsnet --config configs/train/scsnet.yaml --max-minutes 38 --export
engines/scsnet`` (``--resume`` continues from ``<out>/last.pt``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from streamfuse.color import luma, rgb_to_ycbcr
from streamfuse.engines.scsnet import (
    _norm_ycc,
    align,
    align_classic,
    build_inputs,
    output_size,
    reference_planes,
    to_rgb,
    work_size,
)
from streamfuse.evaluation.scsr import HELD_ASIDE, elastic_warp
from streamfuse.metrics import mse_to_psnr
from streamfuse.models.scsnet_arch import CONFIGS, SCSNet, build_model
from streamfuse.train.config import TrainConfig
from streamfuse.train.export import Graph, RunRecord, export_engine, levels
from streamfuse.train.registry import Trainer, register_trainer

# Held aside for validation (natural photos; never trained on). The scsr protocol's stills are excluded entirely.
VAL_STILLS = ("skimage:chelsea", "opencv-doc:orange.jpg", "opencv-doc:stuff.jpg", "sklearn:flower.jpg")
MAX_FRAMES = 3000  # frames decoded per video at most
ALIGN_SCALE = {"scsnet": 0.5, "scsnet-paper": 1.0}  # kept in step with the engines' default align_scale


@dataclass
class SCSNetConfig(TrainConfig):
    """SCSNet training keys (plus the loop's)."""

    model: str = "scsnet"
    """``scsnet`` (fast) or ``scsnet-paper`` (streamfuse.models.scsnet_arch.CONFIGS)."""
    crop: int = 96
    """Output-resolution crop side."""
    min_scale: float = 1.5
    max_scale: float = 4.5
    auto_share: float = 0.3
    """Share of batches trained in automatic mode (no reference)."""
    jitter_share: float = 0.3
    """Share of still references that get the colour jitter."""
    video_share: float = 0.5
    """Share of samples drawn from video frame pairs (the rest from stills)."""
    content_weight: float = 10.0
    """λ_C of the L1 content loss (paper: 10)."""
    adv_weight: float = 0.0
    """λ_Adv of the relativistic adversarial loss (paper: 1; 0 turns the discriminator off)."""
    weight_decay: float = 1e-4
    pairs_per_video: int = 40
    max_side: int = 480
    """Stills and frames are area-shrunk to this longer side."""
    val_samples: int = 24


# --- data -----------------------------------------------------------------------------------------------------


def _shrink(rgb: np.ndarray, max_side: int) -> np.ndarray:
    f = max_side / max(rgb.shape[:2])
    if f >= 1:
        return rgb
    return cv2.resize(rgb, (round(rgb.shape[1] * f), round(rgb.shape[0] * f)), interpolation=cv2.INTER_AREA)


def load_stills(max_side: int) -> dict[str, np.ndarray]:
    """Package stills (``streamfuse.data.stills``: benchmark excluded) minus the scsr protocol's held-aside ones."""
    from streamfuse.data.stills import package_stills

    return {n: _shrink(img, max_side) for n, img in package_stills() if n.split(":")[-1] not in HELD_ASIDE}


def load_video_pairs(per_video: int, max_side: int, rng: np.random.Generator) -> dict[str, list]:
    """Per allow-listed video: up to ``per_video`` (frame, frame 3..8 frames away) pairs, evenly spread."""
    from streamfuse.data.video import iter_frames, training_videos

    out: dict[str, list] = {}
    for path in training_videos():
        frames = []
        try:
            for frame in iter_frames(path):
                frames.append(_shrink(frame, max_side))
                if len(frames) >= MAX_FRAMES:
                    break
        except Exception:  # noqa: BLE001 - an undecodable allow-listed file is skipped, not fatal
            continue
        if len(frames) < 10 or min(frames[0].shape[:2]) < 100:
            continue
        pairs = []
        for t in np.linspace(0, len(frames) - 1, min(per_video, len(frames))).round().astype(int):
            gap = int(rng.integers(3, 9)) * (1 if rng.random() < 0.5 else -1)
            u = int(np.clip(t + gap, 0, len(frames) - 1))
            if u != t:
                pairs.append((frames[t], frames[u]))
        out[str(path)] = pairs
    return out


def colour_jitter(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Mild per-channel gain and offset plus a saturation change (the paper's reference colour jitter)."""
    x = rgb.astype(np.float32)
    grey = x.mean(axis=2, keepdims=True)
    x = grey + (x - grey) * rng.uniform(0.8, 1.2)
    x = x * rng.uniform(0.93, 1.07, 3) + rng.uniform(-8, 8, 3)
    return np.clip(x, 0, 255).astype(np.uint8)


class Sampler:
    """Draws training batches (numpy, built with the engine's own input code)."""

    def __init__(self, cfg: SCSNetConfig, stills: dict, videos: dict, align_scale: float, rng: np.random.Generator):
        self.cfg = cfg
        self.stills = list(stills.values())
        self.pairs = [p for pairs in videos.values() for p in pairs]
        self.align_scale = align_scale
        self.rng = rng
        self.classic = align_classic()

    def _source(self) -> tuple[np.ndarray, np.ndarray]:
        rng = self.rng
        if self.pairs and rng.random() < self.cfg.video_share:
            a, b = self.pairs[int(rng.integers(len(self.pairs)))]
            return (a, b) if rng.random() < 0.5 else (b, a)
        img = self.stills[int(rng.integers(len(self.stills)))]
        ref = elastic_warp(img, rng, alpha=rng.uniform(0.01, 0.05), sigma=rng.uniform(0.05, 0.12))
        if rng.random() < self.cfg.jitter_share:
            ref = colour_jitter(ref, rng)
        return img, ref

    def sample(self, scale: float, referential: bool) -> dict[str, np.ndarray]:
        """One sample at ``scale``: network inputs, the reference LR planes and the target (3, H, W)."""
        rng = self.rng
        lh = lw = max(8, round(self.cfg.crop / scale))
        out_h, out_w = output_size(lh, lw, scale)
        target, ref = self._source()
        while min(target.shape[:2]) < max(out_h, out_w):
            target, ref = self._source()
        y = int(rng.integers(0, target.shape[0] - out_h + 1))
        x = int(rng.integers(0, target.shape[1] - out_w + 1))
        if ref.shape[:2] != target.shape[:2]:
            ref = cv2.resize(ref, (target.shape[1], target.shape[0]), interpolation=cv2.INTER_AREA)
        t_crop = target[y : y + out_h, x : x + out_w]
        r_crop = ref[y : y + out_h, x : x + out_w]
        if rng.random() < 0.5:
            t_crop, r_crop = t_crop[:, ::-1], r_crop[:, ::-1]
        t_crop, r_crop = np.ascontiguousarray(t_crop), np.ascontiguousarray(r_crop)
        mono = cv2.resize(luma(t_crop), (lw, lh), interpolation=cv2.INTER_AREA)
        work = work_size((lw, lh), (out_w, out_h), self.align_scale)
        planes = reference_planes(r_crop, (lw, lh), (out_w, out_h), work)
        aligned = None
        if referential:
            aligned = align(self.classic, mono, planes, self.classic.prepare_reference(planes["work_rgb"]))
        inputs = build_inputs(mono, scale, aligned)
        inputs["ref"] = planes["ref_lr"][None]
        inputs["target"] = _norm_ycc(rgb_to_ycbcr(t_crop.astype(np.float32))).transpose(1, 2, 0)[None]
        return inputs

    def batch(self, n: int, scale: float, referential: bool) -> dict[str, torch.Tensor]:
        samples = [self.sample(scale, referential) for _ in range(n)]
        return {k: torch.from_numpy(np.concatenate([s[k] for s in samples])) for k in samples[0]}


# --- losses ---------------------------------------------------------------------------------------------------


class PatchDiscriminator(nn.Module):
    """A small patch discriminator on Y, Cb, Cr (for the relativistic adversarial loss)."""

    def __init__(self, c: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, c, 4, 2, 1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(c, 2 * c, 4, 2, 1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(2 * c, 1, 3, 1, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def relativistic_losses(d_real: torch.Tensor, d_fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Paper Eq. 7 (relativistic average LSGAN): generator loss and discriminator loss."""
    g = ((d_real - d_fake.mean() + 1) ** 2).mean() + ((d_fake - d_real.mean() - 1) ** 2).mean()
    d = ((d_real - d_fake.mean() - 1) ** 2).mean() + ((d_fake - d_real.mean() + 1) ** 2).mean()
    return g, d


def _forward(net: SCSNet, b: dict[str, torch.Tensor], referential: bool) -> torch.Tensor:
    return net(b["lr"], b["ref"], b["hints"], referential=referential)


def rgb_sq_errors(pred: torch.Tensor, target: torch.Tensor) -> list[float]:
    """Mean squared RGB error (0..255 units) of each item of normalized YCbCr batches."""
    vals = []
    for p, t in zip(pred.detach().cpu().numpy(), target.cpu().numpy(), strict=True):
        a, b = to_rgb(p).astype(np.float64), to_rgb(t).astype(np.float64)
        vals.append(float(np.mean((a - b) ** 2)))
    return vals


def _base(b: dict[str, torch.Tensor]) -> torch.Tensor:
    return b["hints"][..., :3]


# --- trainer --------------------------------------------------------------------------------------------------


class _Reference(nn.Module):
    """Export wrapper: the reference branch (PVCAttn keys and values), once per reference."""

    def __init__(self, net: SCSNet):
        super().__init__()
        self.net = net

    def forward(self, ref: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.net.reference_features(ref))


class _Main(nn.Module):
    """Export wrapper: the per-frame path in one mode."""

    def __init__(self, net: SCSNet, referential: bool):
        super().__init__()
        self.net = net
        self.referential = referential

    def forward(self, lr, hints, *kv):
        return self.net.main(lr, hints, list(kv) if self.referential else None)


MAIN_INPUTS = ("lr", "hints")


def _example(h: int, w: int, scale: float, seed: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Random main-graph inputs and a reference tensor at one size (export trace and parity)."""
    rng = np.random.default_rng(seed)
    mono = rng.integers(0, 256, (h, w), dtype=np.uint8)
    oh, ow = output_size(h, w, scale)
    aligned = {
        "warped": rng.uniform(0, 255, (oh, ow, 3)).astype(np.float32),
        "fill": rng.uniform(0, 255, (oh, ow, 2)).astype(np.float32),
    }
    feeds = build_inputs(mono, scale, aligned)
    ref = torch.from_numpy(rng.uniform(-0.5, 1.0, (1, 3, h, w)).astype(np.float32))
    return {k: torch.from_numpy(feeds[k]) for k in MAIN_INPUTS}, ref


@register_trainer("scsnet")
class SCSNetTrainer(Trainer):
    """SCSNet: L1 content (+ optional relativistic adversarial) loss, both modes, continuous scales."""

    config_class = SCSNetConfig
    score = "mean"

    def build_model(self, cfg: SCSNetConfig) -> nn.Module:
        if cfg.model not in CONFIGS:
            raise ValueError(f"model must be one of {', '.join(CONFIGS)}, got {cfg.model!r}")
        self.cfg = cfg
        self.disc = PatchDiscriminator() if cfg.adv_weight > 0 else None
        self.opt_d = torch.optim.Adam(self.disc.parameters(), lr=cfg.lr) if self.disc is not None else None
        return build_model(CONFIGS[cfg.model])

    def optimizer(self, model: nn.Module, cfg: SCSNetConfig) -> torch.optim.Optimizer:
        """Adam with the paper's betas and weight decay (its 1e-4 rate is for 50 ImageNet epochs; see the YAML)."""
        return torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.9, 0.999), weight_decay=cfg.weight_decay)

    def _sources(self, cfg: SCSNetConfig) -> tuple[dict, dict, dict, dict]:
        if not hasattr(self, "_split"):
            rng = np.random.default_rng(cfg.seed)
            stills = load_stills(cfg.max_side)
            videos = load_video_pairs(cfg.pairs_per_video, cfg.max_side, rng)
            val_stills = {k: stills.pop(k) for k in VAL_STILLS if k in stills}
            val_videos = dict([videos.popitem()]) if len(videos) > 1 else {}
            self._split = (stills, videos, val_stills, val_videos)
        return self._split

    def make_data(self, cfg: SCSNetConfig, split: str) -> Any:
        stills, videos, val_stills, val_videos = self._sources(cfg)
        align_scale = ALIGN_SCALE[cfg.model]
        if split == "train":
            return Sampler(cfg, stills, videos, align_scale, np.random.default_rng(cfg.seed))
        sampler = Sampler(cfg, val_stills, val_videos, align_scale, np.random.default_rng(cfg.seed + 1000))
        val = []
        for i in range(cfg.val_samples):
            scale = (2.0, 3.3, 4.0)[i % 3]
            referential = i % 4 != 3
            val.append((referential, sampler.batch(1, scale, referential)))
        return val

    def batch(self, data: Sampler, cfg: SCSNetConfig, rng: np.random.Generator) -> Any:
        data.rng = rng
        scale = float(rng.uniform(cfg.min_scale, cfg.max_scale))
        referential = bool(rng.random() >= cfg.auto_share)
        b = data.batch(cfg.batch, scale, referential)
        return {k: v.to(self.device) for k, v in b.items()}, referential

    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        b, referential = batch
        pred = _forward(model, b, referential)
        loss = self.cfg.content_weight * F.l1_loss(pred, b["target"])
        if self.disc is not None:
            self.disc.to(pred.device)
            real, fake = b["target"].permute(0, 3, 1, 2), pred.permute(0, 3, 1, 2)  # channels first for the convs
            _, d_loss = relativistic_losses(self.disc(real), self.disc(fake.detach()))
            self.opt_d.zero_grad()
            d_loss.backward()
            self.opt_d.step()
            g_adv, _ = relativistic_losses(self.disc(real), self.disc(fake))
            loss = loss + self.cfg.adv_weight * g_adv
        return loss

    def validate(self, model: nn.Module, data: Any) -> dict[str, float]:
        res: dict[str, list] = {"ref": [], "auto": [], "ref_base": [], "auto_base": []}
        for referential, b in data:
            b = {k: v.to(self.device) for k, v in b.items()}
            key = "ref" if referential else "auto"
            res[key] += rgb_sq_errors(_forward(model, b, referential), b["target"])
            res[key + "_base"] += rgb_sq_errors(_base(b), b["target"])
        # RGB PSNR of the pooled MSE per mode (per-item PSNR is infinite on a flat crop).
        out = {k: round(mse_to_psnr(float(np.mean(v))), 3) for k, v in res.items() if v}
        out["mean"] = round(mse_to_psnr(float(np.mean(res["ref"] + res["auto"]))), 3)
        return out

    def data_manifest(self, cfg: SCSNetConfig) -> dict[str, Any]:
        stills, videos, val_stills, val_videos = self._sources(cfg)
        return {
            "stills": sorted(stills),
            "videos": {k: len(v) for k, v in videos.items()},
            "val_stills": sorted(val_stills),
            "val_videos": sorted(val_videos),
            "held_aside_for_scsr": list(HELD_ASIDE),
            "reference": "stills: elastic warp (+ colour jitter on a share); video: another frame 3-8 frames away",
            "scales": [cfg.min_scale, cfg.max_scale],
        }

    def export(self, model: nn.Module, out_dir: Path, run: RunRecord):
        net: SCSNet = model
        feeds, ref = _example(40, 52, 2.5, 0)
        feeds2, ref2 = _example(33, 47, 3.3, 1)
        kv_names = [f"kv{i}" for i in range(net.n_kv)]
        with torch.no_grad():  # not inference_mode: the graphs are traced with these tensors
            kv, kv2 = _Reference(net)(ref), _Reference(net)(ref2)
        feat = levels(255.0, 0.0, clip=False)
        axes = {n: {2: f"{n}_h", 3: f"{n}_w"} for n in ["lr", "ref", *kv_names]}
        axes.update({n: {1: f"{n}_h", 2: f"{n}_w"} for n in ("hints", "ycc")})  # channels last
        graphs = [
            Graph("reference", "reference.onnx", _Reference(net), {"ref": ref}, kv_names, quantize=feat,
                  parity_inputs=[{"ref": ref2}], dynamic_axes=axes),
            Graph("model", "model.onnx", _Main(net, True), {**feeds, **dict(zip(kv_names, kv, strict=True))},
                  ["ycc"], quantize=feat, parity_inputs=[{**feeds2, **dict(zip(kv_names, kv2, strict=True))}],
                  dynamic_axes=axes),
            Graph("automatic", "automatic.onnx", _Main(net, False), feeds, ["ycc"], quantize=feat,
                  parity_inputs=[feeds2], dynamic_axes=axes),
        ]  # fmt: skip
        classical = {"engine": "guided", "preset": "ultrafast", "detail": 0.0}
        classical["align_scale"] = ALIGN_SCALE[self.cfg.model]
        return export_engine(out_dir, engine="scsnet", model=net, arch=CONFIGS[self.cfg.model], graphs=graphs,
                             pad_multiple=1, run=run, classical_stage=classical)  # fmt: skip

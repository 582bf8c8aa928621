"""Train Pik-Fix (``pikfix`` fast and ``pikfix-paper``) on stills and allow-listed videos with old-film damage.

Samples are rendered on the fly: a clean crop (the truth), its damaged grey version (``streamfuse.data.oldfilm``),
and a colour reference made as the paper does (§4.1): the same picture cropped elsewhere with a small affine /
elastic warp and colour jitter, or, for video, another frame of the same clip, or now and then an unrelated
picture. The losses are the paper's (§3.4): L1 luma reconstruction (α = 1), a perceptual term (β = 0.2), the
EMD of global chroma histograms against the reference (λ = 0.5), L1 chroma (γ = 1) and a PatchGAN adversarial
term (η = 0.2). The fast model has no colorization net, so it trains the luma terms only.

The perceptual term uses the features of a fixed, randomly initialized conv net: no pretrained VGG weights can
be downloaded here (a documented substitute, not the paper's VGG).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from streamfuse.color import luma, rgb_to_ycbcr
from streamfuse.data.oldfilm import (
    HELD_OUT_STILLS,
    VAL_STILLS,
    FilmDamage,
    damage_frame,
    reference_view,
    training_clips,
)
from streamfuse.engines.pikfix import (
    CLASSICAL,
    PAD,
    aligned_chroma,
    classical_engine,
    luma_cdf,
    reference_planes,
    restoration_input,
)
from streamfuse.models.pikfix_arch import CONFIGS, LumaEncoderExport, build_model
from streamfuse.train.config import TrainConfig
from streamfuse.train.export import Graph, RunRecord, export_engine
from streamfuse.train.registry import Trainer, register_trainer

WEIGHTS = {"rec_l": 1.0, "perc_l": 0.2, "emd": 0.5, "rec_ab": 1.0, "adv": 0.2}  # the paper's α, β, λ, γ, η


@dataclass
class PikFixConfig(TrainConfig):
    """Pik-Fix training keys (plus the loop's)."""

    model: str = "fast"
    """``fast`` (engine ``pikfix``) or ``paper`` (engine ``pikfix-paper``)."""
    crop: int = 128
    strength: list[float] = field(default_factory=lambda: [0.4, 1.2])
    """Damage strength range (1 = the default budget of ``FilmDamage.sample``)."""
    unrelated_ref: float = 0.15
    """Share of samples whose reference is an unrelated picture (the paper's second reference recipe)."""
    video_share: float = 0.4
    """Share of samples cut from allow-listed video clips (reference = another frame of the clip)."""
    val_samples: int = 24
    max_video_frames: int = 120


# --- data ----------------------------------------------------------------------------------------------------


def _crop(img: np.ndarray, x: int, y: int, size: int) -> np.ndarray:
    return np.ascontiguousarray(img[y : y + size, x : x + size])


def _rescale(img: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Random downscale (never below the crop size) so crops see several object scales."""
    short = min(img.shape[:2])
    lo = min(1.0, (size + 8) / short)
    f = rng.uniform(max(lo, 0.35), 1.0) if lo < 1 else lo
    if abs(f - 1.0) < 1e-3:
        return img
    return cv2.resize(
        img,
        (max(size + 8, round(img.shape[1] * f)), max(size + 8, round(img.shape[0] * f))),
        interpolation=cv2.INTER_AREA,
    )


class SampleMaker:
    """Renders (degraded, truth, reference) triples from stills and clips, and the network inputs from them."""

    def __init__(self, stills: list[np.ndarray], clips: list[list[np.ndarray]], cfg: PikFixConfig) -> None:
        self.stills, self.clips, self.cfg = stills, clips, cfg
        self.classic = classical_engine()

    def triple(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        size = self.cfg.crop
        strength = float(rng.uniform(*self.cfg.strength))
        use_video = self.clips and rng.random() < self.cfg.video_share
        if use_video:
            clip = self.clips[int(rng.integers(len(self.clips)))]
            t = int(rng.integers(len(clip)))
            frame = clip[t]
            f = size / min(frame.shape[:2]) if min(frame.shape[:2]) < size else 1.0
            src = [cv2.resize(c, None, fx=f, fy=f) if f != 1.0 else c for c in clip]
            frame = src[t]
        else:
            frame = _rescale(self.stills[int(rng.integers(len(self.stills)))], size, rng)
        h, w = frame.shape[:2]
        x, y = int(rng.integers(0, w - size + 1)), int(rng.integers(0, h - size + 1))
        truth = _crop(frame, x, y, size)
        if rng.random() < 0.5:
            truth = np.ascontiguousarray(truth[:, ::-1])
        if rng.random() < self.cfg.unrelated_ref:
            other = _rescale(self.stills[int(rng.integers(len(self.stills)))], size, rng)
            oy, ox = (int(rng.integers(0, d - size + 1)) for d in other.shape[:2])
            ref = _crop(other, ox, oy, size)
        elif use_video:
            other_t = int(np.clip(t + rng.integers(-12, 13), 0, len(src) - 1))
            ref = _crop(src[other_t], x, y, size)
        else:
            ref = reference_view(frame, rng, crop=(x, y, size))
        dmg = FilmDamage.sample(rng, strength, film=use_video or rng.random() < 0.5)
        degraded = damage_frame(truth, dmg, int(rng.integers(0, 50)), rng)
        return degraded, truth, ref

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        """Network inputs and targets of one sample (float32 arrays, channels first)."""
        degraded, truth, ref = self.triple(rng)
        x = restoration_input(degraded, luma_cdf(luma(ref)))
        ycc = rgb_to_ycbcr(truth.astype(np.float32))
        gt_y = ycc[..., 0][None] * (1.0 / 255.0)
        gt_c = (ycc[..., 1:].transpose(2, 0, 1) - 128.0) * (1.0 / 255.0)
        if self.cfg.model != "paper":
            return x, gt_y.astype(np.float32)
        # the alignment at inference runs on the restored luma: train on a near-clean stand-in of it
        proxy = cv2.GaussianBlur(ycc[..., 0], (0, 0), 0.6) + rng.normal(0, 2.0, ycc.shape[:2]).astype(np.float32)
        proxy = np.clip(np.rint(proxy), 0, 255).astype(np.uint8)
        aligned, size = aligned_chroma(self.classic, proxy, self.classic.prepare_reference(ref))
        ref_y, ref_c = reference_planes(ref, size)
        return x, gt_y.astype(np.float32), gt_c.astype(np.float32), aligned, ref_y, ref_c


# --- losses ----------------------------------------------------------------------------------------------------


class RandomFeatures(nn.Module):
    """Frozen random conv features (stand-in for VGG in the perceptual loss; see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(1234)
        self.convs = nn.ModuleList(
            [
                nn.Conv2d(1, 16, 3, padding=1),
                nn.Conv2d(16, 32, 3, stride=2, padding=1),
                nn.Conv2d(32, 32, 3, stride=2, padding=1),
            ]
        )
        for c in self.convs:
            nn.init.normal_(c.weight, 0.0, (2.0 / (c.in_channels * 9)) ** 0.5, generator=g)
            nn.init.zeros_(c.bias)
            c.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for c in self.convs:
            x = F.relu(c(x))
            out.append(x)
        return out


def perceptual(phi: RandomFeatures, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Σ_j mean ‖φ_j(a) − φ_j(b)‖² over the feature levels."""
    return sum(F.mse_loss(fa, fb) for fa, fb in zip(phi(a), phi(b), strict=True))


def emd_loss(hist: nn.Module, pred_c: torch.Tensor, ref_c: torch.Tensor) -> torch.Tensor:
    """EMD between globally pooled SPHist histograms of the output and the reference (squared CDF differences)."""
    n, k = pred_c.shape[0], hist.bins
    hp = hist(pred_c).mean(dim=(2, 3)).view(n, 2, k)
    hr = hist(ref_c).mean(dim=(2, 3)).view(n, 2, k)
    return ((torch.cumsum(hp, 2) - torch.cumsum(hr, 2)) ** 2).sum(2).mean()


class PatchDiscriminator(nn.Module):
    """A small PatchGAN on (luma, chroma)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 16, 4, 2, 1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(16, 32, 4, 2, 1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(32, 1, 3, 1, 1),
        )

    def forward(self, y: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([y, c * 2.0], 1))


# --- the trainer ----------------------------------------------------------------------------------------------


def _rgb_psnr(y: np.ndarray, c: np.ndarray | None, gt_y: np.ndarray, gt_c: np.ndarray | None) -> float:
    """PSNR of RGB (or luma when no chroma) from network-unit planes."""
    if c is None:
        d = (np.clip(y, 0, 1) - gt_y) * 255.0
        return float(10 * np.log10(255.0**2 / max(1e-10, float(np.mean(d * d)))))

    def rgb(yy, cc):
        ycc = np.concatenate([np.clip(yy, 0, 1) * 255.0, cc * 255.0 + 128.0], 0).transpose(1, 2, 0)
        from streamfuse.color import ycbcr_to_rgb

        return ycbcr_to_rgb(ycc.astype(np.float32)).astype(np.float64)

    d = rgb(y, c) - rgb(gt_y, gt_c)
    return float(10 * np.log10(255.0**2 / max(1e-10, float(np.mean(d * d)))))


@register_trainer("pikfix")
class PikFixTrainer(Trainer):
    """Pik-Fix on damaged stills and clips; best.pt by validation RGB PSNR (luma PSNR for the fast model)."""

    config_class = PikFixConfig

    def build_model(self, cfg: PikFixConfig) -> nn.Module:
        self.cfg = cfg
        self.phi = RandomFeatures().to(self.device)
        if cfg.model == "paper":
            self.disc = PatchDiscriminator().to(self.device)
            self.disc_opt = torch.optim.Adam(self.disc.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
        return build_model(CONFIGS[cfg.model])

    def make_data(self, cfg: PikFixConfig, split: str) -> Any:
        from streamfuse.data.stills import package_stills

        stills = package_stills()
        chosen = [(n, img) for n, img in stills if (n in VAL_STILLS) == (split == "val") and n not in HELD_OUT_STILLS]
        keep = [img for _, img in chosen]
        if split == "train":
            self.sources = [n for n, _ in chosen]
        clips = training_clips(cfg.max_video_frames) if split == "train" else []
        maker = SampleMaker(keep, clips, cfg)
        if split == "val":
            rng = np.random.default_rng(12345)
            return [maker.sample(rng) for _ in range(cfg.val_samples)]
        return maker

    def batch(self, data: Any, cfg: PikFixConfig, rng: np.random.Generator) -> Any:
        items = [data.sample(rng) for _ in range(cfg.batch)]
        return tuple(torch.from_numpy(np.stack([it[k] for it in items])).to(self.device) for k in range(len(items[0])))

    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        if self.cfg.model != "paper":
            x, gt_y = batch
            y = model(x)
            return WEIGHTS["rec_l"] * F.l1_loss(y, gt_y) + WEIGHTS["perc_l"] * perceptual(self.phi, y, gt_y)
        x, gt_y, gt_c, aligned, ref_y, ref_c = batch
        y, c = model(x, aligned, ref_y, ref_c)
        # discriminator step (its own optimizer; the loop steps the model's)
        real = self.disc(gt_y, gt_c)
        fake = self.disc(y.detach().clamp(0, 1), c.detach())
        d_loss = F.binary_cross_entropy_with_logits(real, torch.ones_like(real)) + F.binary_cross_entropy_with_logits(
            fake, torch.zeros_like(fake)
        )
        self.disc_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        self.disc_opt.step()
        adv = self.disc(y.clamp(0, 1), c)
        return (
            WEIGHTS["rec_l"] * F.l1_loss(y, gt_y)
            + WEIGHTS["perc_l"] * perceptual(self.phi, y, gt_y)
            + WEIGHTS["emd"] * emd_loss(model.hist, c, ref_c)
            + WEIGHTS["rec_ab"] * F.l1_loss(c, gt_c)
            + WEIGHTS["adv"] * F.binary_cross_entropy_with_logits(adv, torch.ones_like(adv))
        )

    def validate(self, model: nn.Module, data: Any) -> dict[str, float]:
        scores, base = [], []
        for item in data:
            t = [torch.from_numpy(a[None]).to(self.device) for a in item]
            if self.cfg.model == "paper":
                y, c = model(t[0], t[3], t[4], t[5])
                scores.append(_rgb_psnr(y[0].cpu().numpy(), c[0].cpu().numpy(), item[1], item[2]))
                base.append(_rgb_psnr(item[0][:1], item[3][:2], item[1], item[2]))
            else:
                y = model(t[0])
                scores.append(_rgb_psnr(y[0].cpu().numpy(), None, item[1], None))
                base.append(_rgb_psnr(item[0][:1], None, item[1], None))
        return {"mean": float(np.mean(scores)), "degraded": float(np.mean(base))}

    def data_manifest(self, cfg: PikFixConfig) -> dict[str, Any]:
        return self.data_manifest_for(cfg)

    def data_manifest_for(self, cfg: PikFixConfig) -> dict[str, Any]:
        """The training data's description (sources, held-aside stills, damage and reference recipes)."""
        from streamfuse.data.stills import package_stills
        from streamfuse.data.video import training_videos

        if not getattr(self, "sources", None):
            self.sources = [n for n, _ in package_stills() if n not in HELD_OUT_STILLS and n not in VAL_STILLS]
        return {
            "stills": self.sources,
            "videos": [str(p) for p in training_videos()],
            "held_out_stills": list(HELD_OUT_STILLS),
            "val_stills": list(VAL_STILLS),
            "damage": "streamfuse.data.oldfilm.FilmDamage.sample",
            "strength": cfg.strength,
            "reference": "paper §4.1: same picture re-cropped + affine/elastic warp + colour jitter; another "
            f"frame of the clip (video); an unrelated still ({cfg.unrelated_ref:.0%})",
        }

    def export(self, model: nn.Module, out_dir: Path, run: RunRecord):
        arch = CONFIGS[self.cfg.model]
        x = torch.rand(1, 2, 64, 96)
        x2 = torch.rand(1, 2, 48, 80)
        if arch["arch"] == "fast":
            graphs = [
                Graph("restore", "restore.onnx", model, {"degraded": x}, ["restored"], parity_inputs=[{"degraded": x2}])
            ]
        else:
            restore = _Restore(model)
            colorize = _Colorize(model)
            ins = {
                "y": torch.rand(1, 1, 64, 96),
                "aligned": torch.rand(1, 3, 64, 96) - 0.5,
                "ref_y": torch.rand(1, 1, 64, 80),
                "ref_c": torch.rand(1, 2, 64, 80) - 0.5,
            }
            graphs = [
                Graph(
                    "restore", "restore.onnx", restore, {"degraded": x}, ["restored"], parity_inputs=[{"degraded": x2}]
                ),
                Graph("colorize", "colorize.onnx", colorize, ins, ["chroma"], quantize=_chroma_levels),
                Graph(
                    "features",
                    "features.onnx",
                    LumaEncoderExport(model),
                    {"y": torch.rand(1, 1, 64, 96)},
                    ["m1", "m2"],
                    quantize=_feature_levels,
                ),
            ]
        return export_engine(
            out_dir,
            engine="pikfix",
            model=model,
            arch=arch,
            graphs=graphs,
            pad_multiple=PAD,
            run=run,
            classical_stage=CLASSICAL,
        )


def _chroma_levels(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x.astype(np.float64) * 255.0 + 128.0), 0, 255)


def _feature_levels(x: np.ndarray) -> np.ndarray:
    return np.rint(x.astype(np.float64) * 255.0)


class _Restore(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, degraded: torch.Tensor) -> torch.Tensor:
        return self.net.restore(degraded)


class _Colorize(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, y, aligned, ref_y, ref_c) -> torch.Tensor:
        return self.net.colorize(y, aligned, ref_y, ref_c)


def export_run(run_dir: str | Path, out_dir: str | Path, command: str = "") -> Any:
    """Export ``<run_dir>/best.pt`` of a Pik-Fix run as an engine folder, also when the run was stopped by its time
    budget (the loop exports finished runs only); the manifest records the steps and minutes actually trained."""
    import dataclasses

    from streamfuse.train.checkpoint import load_checkpoint

    run = Path(run_dir)
    best, last = load_checkpoint(run / "best.pt", "pikfix"), load_checkpoint(run / "last.pt", "pikfix")
    cfg = PikFixConfig(**best.config)
    trainer = PikFixTrainer()
    model = trainer.build_model(cfg)
    model.load_state_dict(best.model)
    top = max(best.history, key=lambda h: h[trainer.score])
    record = RunRecord(
        command=command,
        train_config={**dataclasses.asdict(cfg), "steps_trained": last.step},
        epochs=int(top.get("epoch", 0)),
        minutes=last.seconds / 60.0,
        device=last.device,
        validation={k: v for k, v in top.items() if k != "epoch"},
        data=trainer.data_manifest_for(cfg),
    )
    return trainer.export(model, Path(out_dir), record)

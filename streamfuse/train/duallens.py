"""The dual-lens trainer (``streamfuse train duallens``): synthetic rectified stereo rendered on the fly.

Training pairs come from :mod:`streamfuse.data.stereo` (depth layers over package stills, never a stereo pair
a package ships); the validation batches are rendered once, with a fixed seed, from held-aside stills. The
loss is the paper's MSE on CbCr plus a deep-supervision term on the rough (weight-volume) colorization.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from streamfuse.color import rgb_to_ycbcr
from streamfuse.data.stereo import sample_pair, stereo_stills
from streamfuse.engines.assets import EngineManifest
from streamfuse.engines.duallens import guided_candidate, network_inputs
from streamfuse.engines.guided import GuidedEngine
from streamfuse.models.duallens_arch import CONFIGS, build_model, pad_multiple
from streamfuse.size import parse_size
from streamfuse.train.config import TrainConfig
from streamfuse.train.export import Graph, RunRecord, export_engine, levels
from streamfuse.train.registry import Trainer, register_trainer


@dataclass
class DualLensConfig(TrainConfig):
    """``streamfuse train duallens`` keys (plus the loop's: out, epochs, steps_per_epoch, batch, lr, ...)."""

    model: str = "duallens"
    """Key of ``streamfuse.models.duallens_arch.CONFIGS`` (duallens, duallens-paper)."""
    out: str = "runs/duallens"
    size: str = "192x128"
    """Training crop WxH (multiples of the pad multiple)."""
    batch: int = 4
    epochs: int = 10
    steps_per_epoch: int = 250
    train_disp: float = 48.0
    """Largest disparity rendered in training (the graph searches the config's ``max_disp``)."""
    rough_weight: float = 0.5
    """Weight of the loss on the rough colorization."""
    val_batches: int = 4
    """Validation batches of 4 pairs, rendered once from the held-aside stills."""
    val_seed: int = 1234


def chroma_psnr(pred: torch.Tensor, gt: torch.Tensor, border: int = 8) -> float:
    """Chroma PSNR (dB, 0..255 scale) with an 8-pixel border excluded."""
    d = (pred - gt)[..., border:-border, border:-border] * 255.0
    return float(10 * torch.log10(255.0**2 / d.pow(2).mean().clamp_min(1e-6)))


def duallens_graphs(net: nn.Module, arch: dict[str, Any], file: str = "duallens.onnx") -> list[Graph]:
    """The one graph a dual-lens engine folder ships: y, ref [, cand] -> cbcr, all in [0, 1]."""
    m = pad_multiple(arch)
    g = torch.Generator().manual_seed(0)

    def inputs(h: int, w: int) -> dict[str, torch.Tensor]:
        out = {"y": torch.rand(1, 1, h, w, generator=g), "ref": torch.rand(1, 3, h, w, generator=g)}
        if arch.get("candidate"):
            out["cand"] = torch.rand(1, 2, h, w, generator=g)
        return out

    return [
        Graph(
            "model",
            file,
            net,
            inputs(64, 96),
            ["cbcr"],
            quantize=levels(255.0),
            parity_inputs=[inputs(2 * m, 3 * m), inputs(3 * m, 2 * m)],
        )
    ]


@register_trainer("duallens")
class DualLensTrainer(Trainer):
    """Trains ``duallens`` (fast, with the guided candidate) or ``duallens-paper`` models (config ``model``)."""

    config_class = DualLensConfig
    score = "chroma_psnr"

    def __init__(self) -> None:
        super().__init__()
        self._cfg: DualLensConfig | None = None
        self._guided: GuidedEngine | None = None
        self._stills: tuple | None = None

    def _arch(self, cfg: DualLensConfig) -> dict[str, Any]:
        if cfg.model not in CONFIGS:
            raise ValueError(f"unknown duallens model {cfg.model!r}; choose one of {', '.join(sorted(CONFIGS))}")
        return dict(CONFIGS[cfg.model])

    def build_model(self, cfg: DualLensConfig) -> nn.Module:
        self._cfg = cfg
        arch = self._arch(cfg)
        self._guided = GuidedEngine() if arch.get("candidate") else None
        # Training renders at most train_disp; the graph is exported with the config's larger search range.
        return build_model({**arch, "max_disp": int(cfg.train_disp) + 8})

    def _render(self, stills: list[np.ndarray], rng: np.random.Generator, n: int) -> tuple[torch.Tensor, ...]:
        cfg = self._cfg
        w, h = parse_size(cfg.size, "192x128")
        multiple = pad_multiple(self._arch(cfg))
        ys, refs, gts, cands = [], [], [], []
        for _ in range(n):
            pair = sample_pair(stills, rng, w, h, cfg.train_disp)
            cand = guided_candidate(self._guided, pair.mono, pair.ref) if self._guided is not None else None
            inp = network_inputs(pair.mono, rgb_to_ycbcr(pair.ref), multiple, cand)
            ys.append(inp["y"][0])
            refs.append(inp["ref"][0])
            if cand is not None:
                cands.append(inp["cand"][0])
            gts.append(rgb_to_ycbcr(pair.left)[..., 1:].transpose(2, 0, 1).astype(np.float32) / 255.0)
        tensors = [torch.from_numpy(np.stack(a)).to(self.device) for a in (ys, refs, gts)]
        c = torch.from_numpy(np.stack(cands)).to(self.device) if cands else None
        return (*tensors, c)

    def make_data(self, cfg: DualLensConfig, split: str) -> Any:
        if self._stills is None:
            self._stills = stereo_stills()
        train, val, _ = self._stills
        if split == "train":
            return train
        rng = np.random.default_rng(cfg.val_seed)
        return [self._render(val, rng, 4) for _ in range(cfg.val_batches)]

    def batch(self, data: list[np.ndarray], cfg: DualLensConfig, rng: np.random.Generator) -> tuple:
        return self._render(data, rng, cfg.batch)

    def loss(self, model: nn.Module, batch: tuple) -> torch.Tensor:
        y, ref, gt, c = batch
        pred, rough = model.colorize(y, ref, c)
        mse = torch.nn.functional.mse_loss
        return mse(pred, gt) + self._cfg.rough_weight * mse(rough, gt)

    def validate(self, model: nn.Module, data: list) -> dict[str, float]:
        out = {
            "chroma_psnr": float(np.mean([chroma_psnr(model(y, r, c), g) for y, r, g, c in data])),
            "unaligned_reference_chroma_psnr": float(np.mean([chroma_psnr(r[:, 1:], g) for y, r, g, c in data])),
        }
        if data and data[0][3] is not None:
            out["guided_candidate_chroma_psnr"] = float(np.mean([chroma_psnr(c, g) for y, r, g, c in data]))
        return {k: round(v, 3) for k, v in out.items()}

    def data_manifest(self, cfg: DualLensConfig) -> dict[str, Any]:
        from dataclasses import asdict

        if self._stills is None:
            self._stills = stereo_stills()
        return asdict(self._stills[2])

    def export(self, model: nn.Module, out_dir: Path, run: RunRecord) -> EngineManifest:
        arch = self._arch(self._cfg)
        net = build_model(arch)  # the search range the engine runs, with the trained weights
        net.load_state_dict(model.state_dict())
        graphs = duallens_graphs(net.eval(), arch, f"{self._cfg.model}.onnx")
        return export_engine(
            out_dir,
            engine="duallens",
            model=net,
            arch=arch,
            graphs=graphs,
            pad_multiple=pad_multiple(arch),
            run=run,
            classical_stage={"engine": "guided", "options": "defaults"} if arch.get("candidate") else None,
        )

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
from streamfuse.data.stereo import sample_pair, sample_video_pair, stereo_stills, video_pairs
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
    tilt_share: float = 0.0
    """Share of synthetic pairs whose baseline is up to ``streamfuse.data.stereo.TILT_DEG`` degrees off the rows."""
    video_data: str = ""
    """A real-clips dataset (``streamfuse clips --out data/real-clips``): pairs cut where the camera translates."""
    video_share: float = 0.0
    """Share of training pairs taken from ``video_data`` (0 = synthetic only)."""


def chroma_psnr(pred: torch.Tensor, gt: torch.Tensor, border: int = 8) -> float:
    """Chroma PSNR (dB, 0..255 scale) with an 8-pixel border excluded."""
    d = (pred - gt)[..., border:-border, border:-border] * 255.0
    return float(10 * torch.log10(255.0**2 / d.pow(2).mean().clamp_min(1e-6)))


RANGE_GRAPHS = (24, 56, 104)
"""Extra graphs' largest disparity (the config's ``max_disp`` is the ``model`` graph): the same weights with
fewer candidates, so a pair whose estimated disparity range is small runs a cheaper volume."""


class GraphSignature(nn.Module):
    """The exported signature: ``y, ref[, cand], stats -> cbcr`` (stats: whole-frame luma mean/std, for tiles)."""

    def __init__(self, net: nn.Module, candidate: bool) -> None:
        super().__init__()
        self.net, self.candidate = net, candidate

    def forward(self, y: torch.Tensor, ref: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
        return self.net(y, ref, rest[0] if self.candidate else None, rest[-1])


def range_role(max_disp: int, arch: dict[str, Any]) -> str:
    """The manifest role of the graph that searches up to ``max_disp`` (``model`` for the config's own range)."""
    return "model" if int(max_disp) == int(arch["max_disp"]) else f"model-d{int(max_disp)}"


def duallens_graphs(net: nn.Module, arch: dict[str, Any], file: str = "duallens.onnx") -> list[Graph]:
    """The graphs a dual-lens engine folder ships: one per search range (:data:`RANGE_GRAPHS` below the config's
    ``max_disp``, and the config's own), all ``y, ref[, cand], stats -> cbcr`` in [0, 1], sharing the weights."""
    m = pad_multiple(arch)
    g = torch.Generator().manual_seed(0)
    candidate = bool(arch.get("candidate"))

    def inputs(h: int, w: int) -> dict[str, torch.Tensor]:
        out = {"y": torch.rand(1, 1, h, w, generator=g), "ref": torch.rand(1, 3, h, w, generator=g)}
        if candidate:
            out["cand"] = torch.rand(1, 2, h, w, generator=g)
        out["stats"] = torch.tensor([[0.45, 0.22, 0.5, 0.25]]) + 0.05 * torch.rand(1, 4, generator=g)
        return out

    stem = file.removesuffix(".onnx")
    graphs = []
    for d in [r for r in RANGE_GRAPHS if r < int(arch["max_disp"])] + [int(arch["max_disp"])]:
        sub = build_model({**arch, "max_disp": d})
        sub.load_state_dict(net.state_dict())
        role = range_role(d, arch)
        graphs.append(
            Graph(
                role,
                file if role == "model" else f"{stem}-d{d}.onnx",
                GraphSignature(sub.eval(), candidate),
                inputs(64, 96),
                ["cbcr"],
                quantize=levels(255.0),
                parity_inputs=[inputs(2 * m, 3 * m), inputs(3 * m, 2 * m)],
                dynamic_axes={k: {2: f"h{i}", 3: f"w{i}"} for i, k in enumerate(["y", "ref", "cand", "cbcr"])},
            )
        )
    return graphs


def reexport(folder: str | Path, out_dir: str | Path | None = None) -> EngineManifest:
    """Export an engine folder's ``weights.pt`` again with today's graphs (new signature or ranges), keeping its
    manifest's training record, e.g. ``reexport("engines/duallens")``.
    """
    import dataclasses
    import json

    folder = Path(folder)
    raw = json.loads((folder / "manifest.json").read_text())
    ckpt = torch.load(folder / "weights.pt", map_location="cpu", weights_only=False)
    arch = dict(ckpt["arch"])
    net = build_model(arch)
    net.load_state_dict(ckpt["model"])
    names = {f.name for f in dataclasses.fields(RunRecord)}
    run = RunRecord(**{k: v for k, v in raw.items() if k in names})
    model_file = raw["graphs"]["model"]
    notes = {**raw.get("notes", {}), "reexported": "graphs with stats input and per-range graphs (same weights)"}
    return export_engine(
        out_dir or folder,
        engine="duallens",
        model=net,
        arch=arch,
        graphs=duallens_graphs(net.eval(), arch, model_file),
        pad_multiple=pad_multiple(arch),
        run=run,
        classical_stage=raw.get("classical_stage"),
        options=raw.get("options"),
        notes=notes,
    )


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
        self._video: tuple[list, list[str]] = ([], [])

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

    def _render(
        self, stills: list[np.ndarray], rng: np.random.Generator, n: int, video: bool = False
    ) -> tuple[torch.Tensor, ...]:
        cfg = self._cfg
        pairs = self._video[0] if video else []
        w, h = parse_size(cfg.size, "192x128")
        multiple = pad_multiple(self._arch(cfg))
        ys, refs, gts, cands = [], [], [], []
        for _ in range(n):
            if pairs and rng.random() < cfg.video_share:
                pair = sample_video_pair(pairs, rng, w, h)
            else:
                pair = sample_pair(stills, rng, w, h, cfg.train_disp, tilt_share=cfg.tilt_share)
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
            if cfg.video_data and cfg.video_share > 0 and not self._video[0]:
                self._video = video_pairs(cfg.video_data, per_file=8)
            return train
        rng = np.random.default_rng(cfg.val_seed)
        return [self._render(val, rng, 4) for _ in range(cfg.val_batches)]

    def batch(self, data: list[np.ndarray], cfg: DualLensConfig, rng: np.random.Generator) -> tuple:
        return self._render(data, rng, cfg.batch, video=True)

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
        out = asdict(self._stills[2])
        if self._video[1]:
            out["sources"] = [*out["sources"], *self._video[1]]
            out["options"] = {**out["options"], "video_data": cfg.video_data, "video_pairs": len(self._video[0])}
        return out

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

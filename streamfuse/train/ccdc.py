"""The CCDC trainer (``streamfuse train ccdc``): fast and paper models on a ``streamfuse synth`` dataset.

Pairs are cut from the x264-encoded synthetic sequences exactly as the video protocol cuts real clips
(reference = frame 0 area-downsampled, target = luma of a later frame). The fast model sees the same
features the engine builds (``streamfuse.engines.ccdc.fast_features``); the paper model sees full-resolution
mono + bicubic-upsampled reference crops. The loop, checkpoints and export are the shared ones
(:mod:`streamfuse.train.loop`, :mod:`streamfuse.train.export`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from streamfuse.color import rgb_to_ycbcr
from streamfuse.data.manifest import load_manifest
from streamfuse.data.synth import sequence_pairs
from streamfuse.data.video import load_sequences
from streamfuse.engines.assets import EngineManifest, load_engine_manifest
from streamfuse.engines.ccdc import (
    CLASSICAL,
    FAST_MULTIPLE,
    PAPER_MULTIPLE,
    classical_engine,
    classical_stage,
    fast_features,
)
from streamfuse.engines.common import pad_to
from streamfuse.metrics import mse_to_psnr
from streamfuse.models.ccdc_arch import CANDIDATES, CONFIGS, FAST_IN_CHANNELS, GUIDE_CHANNEL, build_model
from streamfuse.train.config import TrainConfig
from streamfuse.train.export import Graph, RunRecord, export_engine, levels
from streamfuse.train.registry import Trainer, register_trainer


@dataclass
class CCDCConfig(TrainConfig):
    """``streamfuse train ccdc`` keys (plus the loop's: out, epochs, steps_per_epoch, batch, lr, ...)."""

    model: str = "ccdc"
    """Key of ``streamfuse.models.ccdc_arch.CONFIGS`` (ccdc, ccdc-gated, ccdc-paper, ...)."""
    data: str | list[str] = "data/ccdc-train"
    """Dataset folder(s): ``streamfuse synth`` sequences and/or ``streamfuse clips`` real-video clips (their
    manifests name the sources and the held-aside split). A list trains on all of them."""
    out: str = "runs/ccdc"
    scales: list[int] = field(default_factory=lambda: [4, 8])
    gaps: list[int] = field(default_factory=lambda: [1, 3, 6, 7])
    val_gaps: list[int] = field(default_factory=lambda: [1, 6])
    crop: int = 96
    """Training crop (working-resolution pixels for fast, full-resolution for paper)."""
    crops_per_pair: int = 1
    batch: int = 16
    epochs: int = 20
    steps_per_epoch: int = 400
    max_sequences: int = 0
    """0 = all sequences."""
    loss: str = "charbonnier"
    """Colour loss: charbonnier (the paper's) or mse (what PSNR measures)."""
    warp_loss: float = 0.1
    """Weight of the warping loss on the reference luma."""
    clip_grad: float = 0.5
    max_val: int = 0
    """0 = every validation pair."""


def charbonnier(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Charbonnier (smooth L1) loss, the paper's colour loss."""
    return torch.sqrt((x - y) ** 2 + eps * eps).mean()


def psnr_255(pred: np.ndarray, truth: np.ndarray) -> float:
    """PSNR in dB of 0..255-scaled arrays (capped at 99 dB for identical arrays, so JSON stays finite)."""
    mse = float(np.mean((pred.astype(np.float64) - truth.astype(np.float64)) ** 2))
    return min(99.0, mse_to_psnr(mse))


# --- pair caches --------------------------------------------------------------------------------------------


def _fast_sample(pair, classic) -> tuple[np.ndarray, np.ndarray]:
    """(features C×h×w, target chroma 2×h×w in (c-128)/255 units) at the engine's working resolution."""
    state = classic.prepare_reference(pair.ref)
    st = classical_stage(classic, pair.mono, state)
    truth = cv2.resize(rgb_to_ycbcr(pair.truth), st["size"], interpolation=cv2.INTER_AREA).astype(np.float32)
    target = ((truth[..., 1:] - 128.0) / 255.0).transpose(2, 0, 1)
    return fast_features(st), np.ascontiguousarray(target)


def _paper_sample(pair) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mono 1×H×W, upsampled reference 3×H×W, target chroma 2×H×W), float32 in network units."""
    h, w = pair.mono.shape
    up = cv2.resize(pair.ref, (w, h), interpolation=cv2.INTER_CUBIC).astype(np.float32) / 255.0
    truth = rgb_to_ycbcr(pair.truth).astype(np.float32)
    return (
        pair.mono[None].astype(np.float32) / 255.0,
        np.clip(up, 0, 1).transpose(2, 0, 1),
        ((truth[..., 1:] - 128.0) / 255.0).transpose(2, 0, 1),
    )


def _random_crops(arrays: list[np.ndarray], crop: int, n: int, rng: np.random.Generator) -> list[list[np.ndarray]]:
    h, w = arrays[0].shape[-2:]
    out = []
    for _ in range(n):
        y = int(rng.integers(0, max(1, h - crop + 1)))
        x = int(rng.integers(0, max(1, w - crop + 1)))
        out.append([a[..., y : y + crop, x : x + crop] for a in arrays])
    return out


def data_folders(cfg: CCDCConfig) -> list[str]:
    """The config's dataset folder(s), as a list."""
    return [cfg.data] if isinstance(cfg.data, str) else [str(d) for d in cfg.data]


def _sequences(folders: list[str], max_sequences: int) -> Iterator[tuple[dict, list[np.ndarray]]]:
    """(item, RGB frames) of the first ``max_sequences`` (0 = all) sequences of each folder."""
    for folder in folders:
        yield from itertools.islice(load_sequences(folder), max_sequences or None)


def build_cache(cfg: CCDCConfig, progress: bool = True) -> dict[str, list]:
    """Cut pairs from the dataset(s): training crops and full validation images (cached as .npz next to the data)."""
    folders = data_folders(cfg)
    arch = CONFIGS[cfg.model]["arch"]
    layout = f"{arch}{FAST_IN_CHANNELS}" if arch == "fast" else arch  # a new feature layout gets a new cache
    scales, gaps = "_".join(map(str, cfg.scales)), "_".join(map(str, cfg.gaps))
    key = f"{layout}-{cfg.crop}-{cfg.crops_per_pair}-{cfg.max_sequences}-{scales}-{gaps}"
    if len(folders) > 1:  # the first folder holds the cache of the combination
        key += "-with-" + "-".join(Path(f).name for f in folders[1:])
    path = Path(folders[0]) / f"cache-{key}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=True) as z:
            return z["cache"].item()
    rng = np.random.default_rng(cfg.seed)
    classic = classical_engine()
    total = sum(min(len(load_manifest(f).sequences), cfg.max_sequences or 10**9) for f in folders)
    cache: dict[str, list] = {"train": [], "val": []}
    from tqdm import tqdm

    for seq, frames in tqdm(_sequences(folders, cfg.max_sequences), "pairs", total, unit="seq", disable=not progress):
        val = seq["split"] == "val"
        for pair in sequence_pairs(frames, cfg.scales, cfg.val_gaps if val else cfg.gaps):
            sample = _fast_sample(pair, classic) if arch == "fast" else _paper_sample(pair)
            if val:
                cache["val"].append([a.astype(np.float16) for a in sample] + [pair.scale, pair.gap])
            else:
                for crop in _random_crops(list(sample), cfg.crop, cfg.crops_per_pair, rng):
                    cache["train"].append([a.astype(np.float16) for a in crop])
    if not cache["train"] or not cache["val"]:
        raise ValueError(f"dataset {cfg.data} gave no training or no validation pairs; add sequences or clips")
    np.savez(path, cache=np.array(cache, dtype=object))
    return cache


# --- the network's forward pass on a batch (training and validation) -----------------------------------------


def forward(net: nn.Module, arch: str, tensors: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Prediction and the warping-loss term for one batch."""
    if arch == "fast":
        pred = net(tensors[0])
        if getattr(net, "refine", False):  # warping loss on the learned-alignment candidate
            return pred, charbonnier(net.last_warped_y, tensors[0][:, GUIDE_CHANNEL : GUIDE_CHANNEL + 1])
        return pred, torch.zeros((), device=pred.device)
    mono, ref_up = tensors[0], tensors[1]
    refs = net.reference_branch(ref_up)
    pred = net(mono, *refs)
    return pred, charbonnier(net.last_warped_y, mono)  # the paper's warping loss


# --- export ----------------------------------------------------------------------------------------------


class _PaperReference(nn.Module):
    """Export wrapper: the paper model's reference branch as its own graph."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, ref_up: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.net.reference_branch(ref_up))


def ccdc_graphs(net: nn.Module, arch: dict[str, Any]) -> list[Graph]:
    """The graphs a CCDC engine folder ships: ``model`` (and ``reference`` for the paper model)."""
    g = torch.Generator().manual_seed(0)
    chroma = levels(255.0, 128.0)  # (c - 128) / 255 units -> 8-bit chroma levels
    if arch["arch"] == "fast":
        shape = (1, FAST_IN_CHANNELS)
        return [
            Graph(
                "model",
                "model.onnx",
                net,
                {"features": torch.zeros(*shape, 64, 96)},
                ["chroma"],
                quantize=chroma,
                parity_inputs=[{"features": torch.rand(*shape, 96, 64, generator=g)}],
            )
        ]
    ref_net = _PaperReference(net)
    ref_up = torch.rand(1, 3, 128, 192, generator=g)
    with torch.no_grad():  # plain tensors: the model graph is traced with them
        refs = ref_net(ref_up)
    names = [f"ref{i}" for i in range(len(refs))]
    return [
        Graph("reference", "reference.onnx", ref_net, {"ref_up": ref_up}, names, quantize=levels(255.0, clip=False)),
        Graph(
            "model",
            "model.onnx",
            net,
            {"mono": torch.rand(1, 1, 128, 192, generator=g), **dict(zip(names, refs, strict=True))},
            ["chroma"],
            quantize=chroma,
        ),
    ]


def export_ccdc(
    out_dir: str | Path, model: nn.Module, arch: dict[str, Any], run: RunRecord | None = None, **extra: Any
) -> EngineManifest:
    """A ccdc engine folder for ``model`` (fast: with its pinned classical stage; paper: two graphs)."""
    fast = arch["arch"] == "fast"
    return export_engine(
        out_dir,
        engine="ccdc",
        model=model,
        arch=arch,
        graphs=ccdc_graphs(model, arch),
        pad_multiple=FAST_MULTIPLE if fast else PAPER_MULTIPLE,
        run=run,
        classical_stage={"engine": "guided", **CLASSICAL} if fast else None,
        **extra,
    )


@register_trainer("ccdc")
class CCDCTrainer(Trainer):
    """Trains ``ccdc`` (fast) or ``ccdc-paper`` models, chosen by the config's ``model`` key."""

    config_class = CCDCConfig
    score = "mean"

    def __init__(self) -> None:
        super().__init__()
        self._cache: dict[str, list] | None = None
        self._cfg: CCDCConfig | None = None

    def arch(self, cfg: CCDCConfig) -> str:
        if cfg.model not in CONFIGS:
            raise ValueError(f"unknown ccdc model {cfg.model!r}; choose one of {', '.join(sorted(CONFIGS))}")
        return CONFIGS[cfg.model]["arch"]

    def build_model(self, cfg: CCDCConfig) -> nn.Module:
        self.arch(cfg)
        self._cfg = cfg
        return build_model(CONFIGS[cfg.model])

    def make_data(self, cfg: CCDCConfig, split: str) -> list:
        if self._cache is None:
            self._cache = build_cache(cfg)
        return self._cache[split][: (cfg.max_val or None) if split == "val" else None]

    def batch(self, data: list, cfg: CCDCConfig, rng: np.random.Generator) -> list[torch.Tensor]:
        items = [data[int(i)] for i in rng.integers(0, len(data), cfg.batch)]
        out = [torch.from_numpy(np.stack([it[k] for it in items]).astype(np.float32)) for k in range(len(items[0]))]
        if rng.random() < 0.5:  # horizontal flip; the fast features' flow-x channel changes sign
            out = [t.flip(-1) for t in out]
            if self.arch(cfg) == "fast":
                out[0][:, -2] *= -1
        return [t.to(self.device) for t in out]

    def loss(self, model: nn.Module, batch: list[torch.Tensor]) -> torch.Tensor:
        cfg = self._cfg
        pred, warp = forward(model, self.arch(cfg), batch)
        if cfg.loss == "mse":
            colour = torch.nn.functional.mse_loss(pred, batch[-1]) * 100.0
        else:
            colour = charbonnier(pred, batch[-1])
        return colour + cfg.warp_loss * warp

    def validate(self, model: nn.Module, data: list) -> dict[str, float]:
        """Mean chroma PSNR on the held-aside split, per scale × gap, and of the classical chroma (fast model)."""
        arch = self.arch(self._cfg)
        mult = FAST_MULTIPLE if arch == "fast" else PAPER_MULTIPLE
        res: dict[str, list[float]] = {}
        for item in data:
            *arrays, scale, gap = item
            arrays = [a.astype(np.float32) for a in arrays]
            target = arrays[-1]
            h, w = target.shape[-2:]
            inputs = [torch.from_numpy(pad_to(a, mult)[None]).to(self.device) for a in arrays[:-1]]
            pred, _ = forward(model, arch, inputs)
            pred = pred[0, :, :h, :w].cpu().numpy()
            res.setdefault(f"x{scale}_gap{gap}", []).append(psnr_255(pred * 255, target * 255))
            if arch == "fast":
                fill = 2 + 4 * CANDIDATES.index("fill")  # the classical `guided` chroma, as a baseline
                res.setdefault(f"x{scale}_gap{gap}_guided", []).append(
                    psnr_255(arrays[0][fill : fill + 2] * 255, target * 255)
                )
        out = {k: round(float(np.mean(v)), 3) for k, v in sorted(res.items())}
        out["mean"] = round(float(np.mean([v for k, v in out.items() if not k.endswith("_guided")])), 3)
        return out

    def data_manifest(self, cfg: CCDCConfig) -> dict[str, Any]:
        parts = []
        for folder in data_folders(cfg):
            data = load_manifest(folder)
            parts.append(
                {
                    "folder": folder,
                    "kind": data.kind,
                    "sequences": len(data.sequences),
                    "counts": data.counts,
                    "sources": data.sources,
                    "options": data.options,
                    "seed": data.seed,
                    "excluded": data.exclusion_list,
                }
            )
        return parts[0] if len(parts) == 1 else {"datasets": parts}

    def export(self, model: nn.Module, out_dir: Path, run: RunRecord) -> EngineManifest:
        cfg = self._cfg
        manifest = export_ccdc(out_dir, model, CONFIGS[cfg.model], run)
        if manifest.classical_stage is not None:  # the fast model: pick its detail weight
            scores = select_detail(out_dir, data_folders(cfg))
            manifest, _ = load_engine_manifest(out_dir, engine="ccdc")
            manifest.options["detail"] = float(max(scores, key=scores.get))
            manifest.notes["detail_validation_cbcr_psnr"] = scores
            manifest.write(out_dir)
        return manifest


def select_detail(
    engine_dir: str | Path,
    data: list[str],
    values: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0),
    max_pairs: int = 60,
) -> dict[str, float]:
    """Score the fast engine's high-resolution detail weights on the held-aside split (full resolution).

    The sequences are 4:2:0 video (x264 synthetic or real clips), so this measures whether copying mono luma
    detail into chroma helps there; the export writes the winner into the manifest's options as ``detail``.
    """
    from streamfuse.engines.ccdc import CCDCEngine

    pairs = []
    for folder in data:
        for _, frames in load_sequences(folder, split="val"):
            if len(pairs) >= max_pairs:
                break
            pairs += list(sequence_pairs(frames, [4, 8], [1, 6]))
    scores: dict[str, float] = {}
    for value in values:
        eng = CCDCEngine(model=str(engine_dir), detail=value, threads=1)
        psnrs = []
        for p in pairs[:max_pairs]:
            out = rgb_to_ycbcr(eng.colorize(p.mono, eng.prepare_reference(p.ref)))[8:-8, 8:-8, 1:]
            psnrs.append(psnr_255(out, rgb_to_ycbcr(p.truth)[8:-8, 8:-8, 1:]))
        scores[str(value)] = round(float(np.mean(psnrs)), 3)
    return scores

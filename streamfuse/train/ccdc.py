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

from streamfuse.color import luma, rgb_to_ycbcr
from streamfuse.data.degrade import downsample
from streamfuse.data.manifest import load_manifest
from streamfuse.data.synth import sequence_pairs
from streamfuse.data.video import check_training_video, load_sequences, read_clips
from streamfuse.engines.assets import EngineManifest, load_engine_manifest
from streamfuse.engines.ccdc import (
    CLASSICAL,
    FAST_MULTIPLE,
    PAPER_MULTIPLE,
    TEMPORAL_CLASSICAL,
    classical_engine,
    classical_stage,
    fast_features,
    new_memory,
    push_memory,
    temporal_classical_engine,
    temporal_features,
)
from streamfuse.engines.common import pad_to
from streamfuse.metrics import mse_to_psnr
from streamfuse.models.ccdc_arch import (
    CANDIDATES,
    CONFIGS,
    FAST_IN_CHANNELS,
    GUIDE_CHANNEL,
    TEMPORAL_CHROMA,
    TEMPORAL_IN_CHANNELS,
    build_model,
)
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
    periods: list[int] = field(default_factory=lambda: [3, 6])
    """Temporal model: reference periods K the training streams are cut with (as the stream protocol)."""
    max_clips_per_video: int = 40
    """Temporal model: clips per training video (evenly spread), so one long video does not dominate."""
    frames_per_stream: int = 4
    """Temporal model: frames (not reference frames) kept per clip × setting, one random crop each."""
    framewise: float = 0.2
    """Temporal model: fraction of training samples shown without history (the frame-wise / CCDC-protocol use)."""


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
    truth = cv2.resize(rgb_to_ycbcr(pair.truth), st.size, interpolation=cv2.INTER_AREA).astype(np.float32)
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


def _spread(items: list, n: int) -> list:
    """At most ``n`` items, evenly spread over the list."""
    if n <= 0 or len(items) <= n:
        return items
    return [items[int(i)] for i in np.linspace(0, len(items) - 1, n).round()]


def stream_samples(
    frames: list[np.ndarray], scale: int, period: int, classic
) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """Run one clip as the stream protocol does (references at t = 0, K, 2K, ...; every mono frame in order)
    through the temporal features: (t, features, target chroma 2×h×w in (c-128)/255 units) per frame."""
    h, w = (frames[0].shape[0] // 8) * 8, (frames[0].shape[1] // 8) * 8
    memory = new_memory()
    state = None
    out = []
    for t, frame in enumerate(frames):
        truth = np.ascontiguousarray(frame[:h, :w])
        if t % period == 0:
            state = classic.prepare_reference(downsample(truth, scale))
            push_memory(memory)
        feats, st = temporal_features(classic, luma(truth), state, memory)
        target = cv2.resize(rgb_to_ycbcr(truth), st.size, interpolation=cv2.INTER_AREA).astype(np.float32)
        out.append((t, feats, np.ascontiguousarray(((target[..., 1:] - 128.0) / 255.0).transpose(2, 0, 1))))
    return out


def framewise_view(feats: np.ndarray) -> np.ndarray:
    """The features a frame-wise call gives from a stream's (history candidates replaced as without history).

    Exact for the candidates (``chained``/``memory`` = ``direct``, ``propagated`` = ``fill`` with the direct
    error); ``fill`` keeps the stream's pick, a close stand-in for guided's fill."""
    f = feats.copy()
    f[8:12] = feats[2:6]
    f[12:14] = feats[6:8]
    f[14] = feats[5]
    f[15:19] = feats[2:6]
    return f


def build_stream_cache(cfg: CCDCConfig, progress: bool = True) -> dict[str, list]:
    """Temporal model: candidate stacks of the real clips, computed once (the DIS work) and cached as .npz.

    Training: per clip × (scale, period), ``frames_per_stream`` random non-reference frames, one random crop
    each. Validation (the held-aside videos): each clip's far frames (K−1 after their reference), whole."""
    scales, periods = "_".join(map(str, cfg.scales)), "_".join(map(str, cfg.periods))
    key = f"temporal{TEMPORAL_IN_CHANNELS}-{cfg.crop}-{cfg.max_clips_per_video}-{cfg.frames_per_stream}"
    folders = data_folders(cfg)
    path = Path(folders[0]) / f"cache-{key}-{scales}-{periods}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=True) as z:
            return z["cache"].item()
    rng = np.random.default_rng(cfg.seed)
    classic = temporal_classical_engine()
    by_video: dict[str, list[dict]] = {}
    for folder in folders:
        manifest = load_manifest(folder)
        if manifest.kind != "real-clips":
            raise ValueError(f"{folder} is a {manifest.kind} dataset; the temporal model trains on `streamfuse clips`")
        for item in manifest.sequences:
            by_video.setdefault(item["file"], []).append(item)
    cache: dict[str, list] = {"train": [], "val": []}
    from tqdm import tqdm

    groups = [_spread(g, cfg.max_clips_per_video if g[0]["split"] == "train" else 8) for g in by_video.values()]
    bar = tqdm(total=sum(map(len, groups)), desc="streams", unit="clip", disable=not progress, mininterval=30)
    for group in groups:
        file = group[0]["file"]
        check_training_video(file)
        clips = read_clips(file, [i["start"] for i in group], group[0]["frames"])
        for item in group:
            bar.update(1)
            _stream_item(cache, item, clips[item["start"]], cfg, classic, rng)
    bar.close()
    if not cache["train"] or not cache["val"]:
        raise ValueError(f"dataset {cfg.data} gave no training or no validation streams; make more clips")
    np.savez(path, cache=np.array(cache, dtype=object))
    return cache


def _stream_item(cache: dict[str, list], item: dict, frames: list[np.ndarray], cfg: CCDCConfig, classic, rng) -> None:
    """One clip's samples into the cache (see ``build_stream_cache``)."""
    val = item["split"] == "val"
    for scale in cfg.scales:
        for period in [6] if val else cfg.periods:
            samples = stream_samples(frames, scale, period, classic)
            if val:
                for t, feats, target in samples:
                    if t % period == period - 1:
                        cache["val"].append([feats.astype(np.float16), target.astype(np.float16), scale, period])
                continue
            cands = [x for x in samples if x[0] % period != 0]
            for j in rng.permutation(len(cands))[: cfg.frames_per_stream]:
                _, feats, target = cands[int(j)]
                for crop in _random_crops([feats, target], cfg.crop, 1, rng):
                    cache["train"].append([a.astype(np.float16) for a in crop])


# --- the network's forward pass on a batch (training and validation) -----------------------------------------


def forward(net: nn.Module, arch: str, tensors: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Prediction and the warping-loss term for one batch."""
    if arch == "temporal":
        return net(tensors[0]), torch.zeros((), device=tensors[0].device)
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
    if arch["arch"] in ("fast", "temporal"):
        shape = (1, FAST_IN_CHANNELS if arch["arch"] == "fast" else TEMPORAL_IN_CHANNELS)
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
    """A ccdc engine folder for ``model`` (fast/temporal: with its pinned classical stage; paper: two graphs)."""
    fast = arch["arch"] in ("fast", "temporal")
    stage = (
        {"engine": "guided", **CLASSICAL}
        if arch["arch"] == "fast"
        else {"engine": "guided-temporal", **TEMPORAL_CLASSICAL}
    )
    return export_engine(
        out_dir,
        engine="ccdc",
        model=model,
        arch=arch,
        graphs=ccdc_graphs(model, arch),
        pad_multiple=FAST_MULTIPLE if fast else PAPER_MULTIPLE,
        run=run,
        classical_stage=stage if fast else None,
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
            self._cache = build_stream_cache(cfg) if self.arch(cfg) == "temporal" else build_cache(cfg)
            # a clip smaller than the crop (at the working size for fast/temporal) gave a smaller one: drop it
            self._cache["train"] = [it for it in self._cache["train"] if it[0].shape[-2:] == (cfg.crop, cfg.crop)]
        return self._cache[split][: (cfg.max_val or None) if split == "val" else None]

    def batch(self, data: list, cfg: CCDCConfig, rng: np.random.Generator) -> list[torch.Tensor]:
        items = [data[int(i)] for i in rng.integers(0, len(data), cfg.batch)]
        temporal = self.arch(cfg) == "temporal"
        if temporal and cfg.framewise > 0:  # some samples without history (the frame-wise use)
            items = [
                [framewise_view(it[0].astype(np.float32)), it[1]] if rng.random() < cfg.framewise else it
                for it in items
            ]
        out = [torch.from_numpy(np.stack([it[k] for it in items]).astype(np.float32)) for k in range(len(items[0]))]
        if rng.random() < 0.5:  # horizontal flip; the flow-x channel changes sign
            out = [t.flip(-1) for t in out]
            if self.arch(cfg) != "paper":
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
            if arch == "temporal":  # the classical baselines: guided's warp (direct) and guided-temporal (fill)
                for label, k in (("direct", 0), ("gt", 1)):
                    cb = TEMPORAL_CHROMA[k][0]
                    res.setdefault(f"x{scale}_gap{gap}_{label}", []).append(
                        psnr_255(arrays[0][cb : cb + 2] * 255, target * 255)
                    )
        out = {k: round(float(np.mean(v)), 3) for k, v in sorted(res.items())}
        baselines = ("_guided", "_direct", "_gt")
        out["mean"] = round(float(np.mean([v for k, v in out.items() if not k.endswith(baselines)])), 3)
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
        if manifest.classical_stage is not None and CONFIGS[cfg.model]["arch"] == "fast":  # pick its detail weight
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

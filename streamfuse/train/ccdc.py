"""Train a CCDC network on a ``streamfuse synth`` dataset (CPU, resumable, validation PSNR every epoch).

Pairs are cut from the x264-encoded synthetic sequences exactly as the video protocol cuts real clips
(reference = frame 0 area-downsampled, target = luma of a later frame). The fast model sees the same
features the engine builds (``streamfuse.engines.ccdc.fast_features``); the paper model sees full-resolution
mono + bicubic-upsampled reference crops.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from streamfuse.color import rgb_to_ycbcr
from streamfuse.data.synth import decode_video, load_manifest, sequence_pairs
from streamfuse.engines.ccdc import PAPER_MULTIPLE, classical_engine, classical_stage, fast_features, pad_to
from streamfuse.models.ccdc_arch import CANDIDATES, CONFIGS, FAST_IN_CHANNELS, GUIDE_CHANNEL, build_model


@dataclass
class TrainConfig:
    """Everything a training run depends on (saved into checkpoints and the manifest)."""

    model: str = "ccdc"  # key of streamfuse.models.ccdc_arch.CONFIGS
    data: str = "data/ccdc-train"
    out: str = "runs/ccdc"
    scales: list[int] = field(default_factory=lambda: [4, 8])
    gaps: list[int] = field(default_factory=lambda: [1, 3, 6, 7])
    val_gaps: list[int] = field(default_factory=lambda: [1, 6])
    crop: int = 96  # training crop (working-resolution pixels for fast, full-resolution for paper)
    crops_per_pair: int = 1
    batch: int = 16
    lr: float = 1e-3
    epochs: int = 20
    steps_per_epoch: int = 400
    max_sequences: int = 0  # 0 = all
    loss: str = "charbonnier"  # colour loss: charbonnier (the paper's) or mse (what PSNR measures)
    warp_loss: float = 0.1  # paper model: weight of the warping loss on the reference luma
    init: str = ""  # checkpoint to start from (fine-tuning); empty = random init
    clip_grad: float = 0.5
    max_val: int = 0  # 0 = every validation pair
    seed: int = 0
    threads: int = 1


def charbonnier(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Charbonnier (smooth L1) loss, the paper's colour loss."""
    return torch.sqrt((x - y) ** 2 + eps * eps).mean()


def psnr_255(pred: np.ndarray, truth: np.ndarray) -> float:
    """PSNR in dB of 0..255-scaled arrays."""
    mse = float(np.mean((pred.astype(np.float64) - truth.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * math.log10(255.0**2 / mse)


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


def build_cache(cfg: TrainConfig, progress: bool = True) -> dict[str, list]:
    """Cut pairs from the dataset: training crops and full validation images (cached as .npz next to the data)."""
    manifest = load_manifest(cfg.data)
    arch = CONFIGS[cfg.model]["arch"]
    layout = f"{arch}{FAST_IN_CHANNELS}" if arch == "fast" else arch  # a new feature layout gets a new cache
    scales, gaps = "_".join(map(str, cfg.scales)), "_".join(map(str, cfg.gaps))
    key = f"{layout}-{cfg.crop}-{cfg.crops_per_pair}-{cfg.max_sequences}-{scales}-{gaps}"
    path = Path(cfg.data) / f"cache-{key}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=True) as z:
            return z["cache"].item()
    rng = np.random.default_rng(cfg.seed)
    classic = classical_engine()
    seqs = manifest.sequences[: cfg.max_sequences or None]
    cache: dict[str, list] = {"train": [], "val": []}
    it = seqs
    if progress:
        from tqdm import tqdm

        it = tqdm(seqs, desc="pairs", unit="seq")
    for seq in it:
        frames = decode_video(Path(cfg.data) / seq["file"])
        val = seq["split"] == "val"
        for pair in sequence_pairs(frames, cfg.scales, cfg.val_gaps if val else cfg.gaps):
            sample = _fast_sample(pair, classic) if arch == "fast" else _paper_sample(pair)
            if val:
                cache["val"].append([a.astype(np.float16) for a in sample] + [pair.scale, pair.gap])
            else:
                for crop in _random_crops(list(sample), cfg.crop, cfg.crops_per_pair, rng):
                    cache["train"].append([a.astype(np.float16) for a in crop])
    np.savez(path, cache=np.array(cache, dtype=object))
    return cache


# --- training loop ------------------------------------------------------------------------------------------


def _batch(train: list, idx: np.ndarray, rng: np.random.Generator, arch: str) -> list[torch.Tensor]:
    items = [train[i] for i in idx]
    out = [torch.from_numpy(np.stack([it[k] for it in items]).astype(np.float32)) for k in range(len(items[0]))]
    if rng.random() < 0.5:  # horizontal flip; the fast features' flow-x channel changes sign
        out = [t.flip(-1) for t in out]
        if arch == "fast":
            out[0][:, -2] *= -1
    return out


def _forward(net, arch: str, tensors: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Prediction and the extra (warping) loss term for one batch."""
    if arch == "fast":
        pred = net(tensors[0])
        if getattr(net, "refine", False):  # warping loss on the learned-alignment candidate
            return pred, charbonnier(net.last_warped_y, tensors[0][:, GUIDE_CHANNEL : GUIDE_CHANNEL + 1])
        return pred, torch.zeros(())
    mono, ref_up = tensors[0], tensors[1]
    refs = net.reference_branch(ref_up)
    pred = net(mono, *refs)
    return pred, charbonnier(net.last_warped_y, mono)  # the paper's warping loss


def validate(net, cache: dict, arch: str, cfg_max_val: int = 0) -> dict[str, float]:
    """Mean chroma PSNR on the held-aside split, per scale × gap, and of the plain DIS warp (fast model)."""
    net.eval()
    res: dict[str, list[float]] = {}
    with torch.inference_mode():
        for item in cache["val"][: cfg_max_val or None]:
            *arrays, scale, gap = item
            arrays = [a.astype(np.float32) for a in arrays]
            target = arrays[-1]
            h, w = target.shape[-2:]
            mult = 32 if arch == "fast" else PAPER_MULTIPLE
            inputs = [torch.from_numpy(pad_to(a, mult)[None]) for a in arrays[:-1]]
            pred, _ = _forward(net, arch, inputs)
            pred = pred[0, :, :h, :w].numpy()
            res.setdefault(f"x{scale}_gap{gap}", []).append(psnr_255(pred * 255, target * 255))
            if arch == "fast":
                fill = 2 + 4 * CANDIDATES.index("fill")  # the classical `guided` chroma, as a baseline
                res.setdefault(f"x{scale}_gap{gap}_guided", []).append(
                    psnr_255(arrays[0][fill : fill + 2] * 255, target * 255)
                )
    net.train()
    out = {k: round(float(np.mean(v)), 3) for k, v in sorted(res.items())}
    model_keys = [k for k in out if not k.endswith("_guided")]
    out["mean"] = round(float(np.mean([out[k] for k in model_keys])), 3)
    return out


def train(cfg: TrainConfig, resume: bool = False, progress: bool = True) -> dict:
    """Train (or resume) and return the summary: epochs, seconds, best validation metrics.

    Writes ``last.pt`` every epoch and ``best.pt`` when the validation mean improves, in ``cfg.out``.
    """
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    arch = CONFIGS[cfg.model]["arch"]
    t_start = time.time()
    cache = build_cache(cfg, progress)
    if not cache["train"] or not cache["val"]:
        raise ValueError(f"dataset {cfg.data} gave no training or no validation pairs; synthesize more sequences")
    net = build_model(CONFIGS[cfg.model])
    if cfg.init:
        net.load_state_dict(torch.load(cfg.init, map_location="cpu", weights_only=False)["model"])
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    total = cfg.epochs * cfg.steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    state = {"epoch": 0, "best": -1.0, "history": [], "seconds": 0.0}
    last = out / "last.pt"
    if resume and last.is_file():
        ck = torch.load(last, map_location="cpu", weights_only=False)
        net.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optim"])
        sched.load_state_dict(ck["sched"])
        state = ck["state"]
    rng = np.random.default_rng(cfg.seed + state["epoch"])
    seconds0 = state["seconds"]
    t0 = time.time()
    if state["epoch"] == 0:
        state["history"].append({"epoch": 0, **validate(net, cache, arch, cfg.max_val)})
    for epoch in range(state["epoch"] + 1, cfg.epochs + 1):
        steps = range(cfg.steps_per_epoch)
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(steps, desc=f"epoch {epoch}/{cfg.epochs}", unit="step")
            steps = bar
        losses = []
        for _ in steps:
            tensors = _batch(cache["train"], rng.integers(0, len(cache["train"]), cfg.batch), rng, arch)
            pred, warp = _forward(net, arch, tensors)
            colour = (
                torch.nn.functional.mse_loss(pred, tensors[-1]) * 100.0
                if cfg.loss == "mse"
                else charbonnier(pred, tensors[-1])
            )
            loss = colour + cfg.warp_loss * warp
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.clip_grad)  # the warp path can spike
            opt.step()
            sched.step()
            losses.append(loss.item())
            if bar is not None and len(losses) % 20 == 0:
                bar.set_postfix(loss=f"{np.mean(losses[-20:]):.5f}")
        metrics = validate(net, cache, arch, cfg.max_val)
        state["epoch"] = epoch
        state["seconds"] = seconds0 + time.time() - t0
        state["history"].append({"epoch": epoch, "loss": float(np.mean(losses)), **metrics})
        print(json.dumps(state["history"][-1]), flush=True)
        ck = {
            "model": net.state_dict(),
            "optim": opt.state_dict(),
            "sched": sched.state_dict(),
            "state": state,
            "config": asdict(cfg),
            "arch": CONFIGS[cfg.model],
        }
        if metrics["mean"] > state["best"]:
            state["best"] = metrics["mean"]
            torch.save(
                {"model": net.state_dict(), "arch": CONFIGS[cfg.model], "metrics": metrics, "epoch": epoch},
                out / "best.pt",
            )
        torch.save(ck, last)
    summary = {
        "epochs": state["epoch"],
        "train_seconds": round(state["seconds"], 1),
        "wall_seconds_incl_cache": round(time.time() - t_start, 1),
        "best_val_mean": state["best"],
        "history": state["history"],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def load_config(path: str | Path) -> TrainConfig:
    """Read a training YAML; unknown keys are an error that lists the accepted ones."""
    import dataclasses

    import yaml

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"training config {p} not found; see configs/train-ccdc.yaml for an example")
    raw = yaml.safe_load(p.read_text()) or {}
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise ValueError(f"{p}: unknown key(s) {', '.join(unknown)}; accepted: {', '.join(sorted(names))}")
    return TrainConfig(**raw)


def run(cfg: TrainConfig, resume: bool = False, export_dir: str | None = None, command: str = "") -> dict:
    """Train, then optionally export ``best.pt`` as an engine folder whose manifest records the run."""
    summary = train(cfg, resume=resume)
    if export_dir:
        from streamfuse.data.synth import load_manifest as data_manifest
        from streamfuse.train.export import export_checkpoint

        data = data_manifest(cfg.data)
        best = max(summary["history"], key=lambda h: h.get("mean", -1))
        export_checkpoint(
            Path(cfg.out) / "best.pt",
            export_dir,
            {
                "data": {
                    "folder": cfg.data,
                    "sequences": len(data.sequences),
                    "sources": data.sources,
                    "synth_options": data.options,
                    "synth_seed": data.seed,
                    "excluded": data.exclusion_list,
                },
                "command": command,
                "train_config": asdict(cfg),
                "epochs": summary["epochs"],
                "training_seconds": summary["train_seconds"],
                "validation": best,
            },
        )
        if CONFIGS[cfg.model]["arch"] == "fast":
            from streamfuse.engines.ccdc import CLASSICAL

            path = Path(export_dir) / "manifest.json"
            manifest = json.loads(path.read_text())
            manifest["classical_stage"] = {"engine": "guided", **CLASSICAL}
            path.write_text(json.dumps(manifest, indent=1) + "\n")
            select_detail(export_dir, cfg.data)
    return summary


def select_detail(
    engine_dir: str | Path, data: str | Path, values: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0), max_pairs: int = 60
) -> dict[str, float]:
    """Pick the fast engine's high-resolution detail weight on the held-aside synthetic split (full resolution).

    The synthetic sequences are x264 4:2:0 like real video, so this measures whether copying mono luma detail
    into chroma helps there; the winner is written into the engine manifest as ``detail``.
    """
    from streamfuse.engines.ccdc import CCDCEngine

    manifest = load_manifest(data)
    pairs = []
    for seq in manifest.sequences:
        if seq["split"] == "val" and len(pairs) < max_pairs:
            pairs += list(sequence_pairs(decode_video(Path(data) / seq["file"]), [4, 8], [1, 6]))
    scores: dict[str, float] = {}
    for value in values:
        eng = CCDCEngine(model=str(engine_dir), detail=value, threads=1)
        psnrs = []
        for p in pairs[:max_pairs]:
            out = rgb_to_ycbcr(eng.colorize(p.mono, eng.prepare_reference(p.ref)))[8:-8, 8:-8, 1:]
            psnrs.append(psnr_255(out, rgb_to_ycbcr(p.truth)[8:-8, 8:-8, 1:]))
        scores[str(value)] = round(float(np.mean(psnrs)), 3)
    path = Path(engine_dir) / "manifest.json"
    engine_manifest = json.loads(path.read_text())
    engine_manifest["detail"] = float(max(scores, key=scores.get))
    engine_manifest["detail_validation_cbcr_psnr"] = scores
    path.write_text(json.dumps(engine_manifest, indent=1) + "\n")
    return scores

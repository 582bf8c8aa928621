"""Train a dual-lens network on synthetic rectified stereo made from stills (CPU, one thread, time-boxed).

Each pair is rendered from depth layers: a background still with a planar disparity field and 1–4 textured
foreground objects (cut from other stills) at larger disparities, so the colour (right) view has occlusions
and disocclusions with known geometry. The colour camera gets an exposure/colour difference, an optional
scale gap (x1/x2/x4) and the paper's noise (Setup1 0.03·√κ, Setup2 0.07·√κ, or in between); the mono
(left) camera gets 0.01·√κ. The public benchmark (aloe, rubberwhale, the videos) is never read.

Usage:
    nohup python tools/train_duallens.py --config duallens --minutes 33 --out engines/duallens \
        > /tmp/duallens-train.log 2>&1 & echo $! > /tmp/duallens-train.pid
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from streamfuse.color import luma, rgb_to_ycbcr
from streamfuse.data.degrade import downsample, sensor_noise
from streamfuse.data.synth import check_not_benchmark, package_stills
from streamfuse.engines.duallens import guided_candidate, network_inputs
from streamfuse.engines.guided import GuidedEngine
from streamfuse.models.duallens_arch import CONFIGS, build_model, pad_multiple

VALIDATION_STILLS = ("skimage:coffee", "sklearn:flower.jpg", "opencv-doc:fruits.jpg", "opencv-doc:baboon.jpg")
_MARGIN = 12  # texture columns kept left of the view, for negative disparities
SMALL_SHARE = 0.3  # share of small-baseline, slightly misrectified training pairs


# --- synthetic stereo --------------------------------------------------------------------------------------


def _texture(still: np.ndarray, w: int, h: int, rng: np.random.Generator) -> np.ndarray:
    """A random w×h float32 crop of a still at a random zoom, randomly flipped."""
    ih, iw = still.shape[:2]
    zoom = max(w / iw, h / ih) * rng.uniform(1.0, 2.0) if rng.random() < 0.5 else max(w / iw, h / ih, 0.5)
    zoom = max(zoom, w / iw, h / ih)
    img = cv2.resize(
        still,
        (int(np.ceil(iw * zoom)) + 1, int(np.ceil(ih * zoom)) + 1),
        interpolation=cv2.INTER_AREA if zoom < 1 else cv2.INTER_CUBIC,
    )
    y = rng.integers(0, img.shape[0] - h + 1)
    x = rng.integers(0, img.shape[1] - w + 1)
    crop = img[y : y + h, x : x + w].astype(np.float32)
    return crop[:, ::-1].copy() if rng.random() < 0.5 else crop


def _plane(w: int, h: int, base: float, slope: float, rng: np.random.Generator) -> np.ndarray:
    """A planar disparity field base + gx·x/w + gy·y/h."""
    gx, gy = rng.uniform(-slope, slope, 2)
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32) / w, np.arange(h, dtype=np.float32) / h)
    return (base + gx * (xs - 0.5) + gy * (ys - 0.5)).astype(np.float32)


def _polygon_mask(w: int, h: int, rng: np.random.Generator) -> np.ndarray:
    """A soft-edged random star-shaped polygon covering 5–35 % of the frame."""
    cx, cy = rng.uniform(0.1, 0.9) * w, rng.uniform(0.1, 0.9) * h
    r = rng.uniform(0.12, 0.35) * min(w, h) * rng.uniform(1.0, 1.8)
    k = rng.integers(5, 11)
    ang = np.sort(rng.uniform(0, 2 * np.pi, k))
    rad = r * rng.uniform(0.5, 1.0, k)
    pts = np.stack([cx + rad * np.cos(ang) * rng.uniform(0.7, 1.5), cy + rad * np.sin(ang)], 1).astype(np.int32)
    mask = np.zeros((h, w), np.float32)
    cv2.fillPoly(mask, [pts], 1.0)
    return cv2.GaussianBlur(mask, (0, 0), 0.6)


def render_stereo(
    stills: list[np.ndarray], rng: np.random.Generator, w: int, h: int, max_disp: float, wobble: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """A rectified (left, right) RGB uint8 pair from depth layers; right pixel x' shows left pixel x' + d.

    ``wobble`` > 0 also moves each layer vertically by up to that many pixels in the right view: an imperfectly
    rectified rig, or a small-baseline pair with a little independent motion.
    """
    tw = w + int(max_disp) + 2 * _MARGIN
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    dy = rng.uniform(-0.8, 0.8) if rng.random() < 0.3 else 0.0  # residual vertical calibration error
    far = rng.uniform(-4, 0.4 * max_disp)
    layers = [(_texture(stills[rng.integers(len(stills))], tw, h, rng), None, _plane(w, h, far, 0.3 * max_disp, rng))]
    shifts = [rng.uniform(-wobble, wobble) for _ in range(5)]
    for _ in range(rng.integers(1, 5)):
        lo = max(far, 0) + 2
        base = rng.uniform(lo, max(lo + 0.5, max_disp * 0.95))
        layers.append(
            (
                _texture(stills[rng.integers(len(stills))], tw, h, rng),
                _polygon_mask(tw, h, rng),
                _plane(w, h, base, 0.1 * max_disp, rng),
            )
        )
    layers[1:] = sorted(layers[1:], key=lambda t: float(t[2].mean()))
    left = np.zeros((h, w, 3), np.float32)
    right = np.zeros((h, w, 3), np.float32)
    for (tex, mask, disp), wob in zip(layers, shifts, strict=False):
        mx_l, mx_r = xs + _MARGIN, np.clip(xs + _MARGIN + disp, 0, tw - 1)
        for view, mx, my in ((left, mx_l, ys), (right, mx_r, np.clip(ys + dy + wob, 0, h - 1))):
            col = cv2.remap(tex, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
            if mask is None:
                view[:] = col
            else:
                a = cv2.remap(mask, mx, my, cv2.INTER_LINEAR)[..., None]
                view[:] = view * (1 - a) + col * a
    return np.clip(np.rint(left), 0, 255).astype(np.uint8), np.clip(np.rint(right), 0, 255).astype(np.uint8)


def camera_pair(left: np.ndarray, right: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, dict]:
    """Mono luma of the left view and the degraded colour reference of the right view (the protocol's cameras)."""
    gain = rng.uniform(0.9, 1.1) * rng.uniform(0.97, 1.03, 3)
    gamma = rng.uniform(0.92, 1.08)
    ref = np.clip(255.0 * (np.clip(right * gain / 255.0, 0, 1) ** gamma), 0, 255).astype(np.uint8)
    scale = float(rng.choice([1, 1, 2, 4]))
    a = float(rng.choice([0.03, 0.07, rng.uniform(0.01, 0.08)]))
    ref = (
        sensor_noise(downsample(ref, scale), a, rng)
        if rng.random() < 0.5
        else downsample(sensor_noise(ref, a, rng), scale)
    )
    mono = sensor_noise(luma(left), 0.01, rng)
    return mono, ref, {"scale": scale, "noise": a}


def make_batch(
    stills: list[np.ndarray],
    rng: np.random.Generator,
    batch: int,
    w: int,
    h: int,
    max_disp: float,
    multiple: int,
    candidate: bool = False,
) -> tuple[torch.Tensor, ...]:
    """(y, ref, target CbCr, candidate CbCr or None) tensors for one batch."""
    ys, refs, gts, cands = [], [], [], []
    guided = GuidedEngine() if candidate else None
    for _ in range(batch):
        # 30 % small-baseline pairs (disparity <= 8 px, per-layer vertical wobble up to 2 px), where the classical
        # candidate is good, so the network learns when to trust it; the rest wide-baseline stereo.
        small = rng.random() < SMALL_SHARE
        left, right = render_stereo(stills, rng, w, h, rng.uniform(3, 8) if small else max_disp, 2.0 if small else 0.0)
        mono, ref, _ = camera_pair(left, right, rng)
        cand = guided_candidate(guided, mono, ref) if guided is not None else None
        inp = network_inputs(mono, rgb_to_ycbcr(ref), multiple, cand)
        ys.append(inp["y"][0])
        refs.append(inp["ref"][0])
        if cand is not None:
            cands.append(inp["cand"][0])
        gts.append(rgb_to_ycbcr(left)[..., 1:].transpose(2, 0, 1).astype(np.float32) / 255.0)
    c = torch.from_numpy(np.stack(cands)) if cands else None
    return torch.from_numpy(np.stack(ys)), torch.from_numpy(np.stack(refs)), torch.from_numpy(np.stack(gts)), c


def chroma_psnr(pred: torch.Tensor, gt: torch.Tensor, border: int = 8) -> float:
    """Chroma PSNR (dB, 0..255 scale) with an 8-pixel border excluded."""
    d = (pred - gt)[..., border:-border, border:-border] * 255.0
    return float(10 * torch.log10(255.0**2 / d.pow(2).mean().clamp_min(1e-6)))


# --- training ------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default="duallens", choices=sorted(CONFIGS))
    ap.add_argument("--minutes", type=float, default=33.0, help="wall-clock training budget")
    ap.add_argument("--out", required=True, help="output folder (weights.pt + train.json)")
    ap.add_argument("--size", default="192x128", help="training crop WxH (multiples of the pad multiple)")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--train-disp", type=float, default=48, help="largest disparity rendered in training")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rough-weight", type=float, default=0.5, help="weight of the loss on the rough colorization")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    t_start = time.time()
    w, h = (int(v) for v in args.size.split("x"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    named = package_stills()
    check_not_benchmark(n.split(":", 1)[1] for n, _ in named)
    train = [s for n, s in named if n not in VALIDATION_STILLS]
    val = [s for n, s in named if n in VALIDATION_STILLS]
    print(f"stills: {len(train)} train, {len(val)} validation", flush=True)

    arch = dict(CONFIGS[args.config])
    net = build_model({**arch, "max_disp": int(args.train_disp) + 8})
    multiple = pad_multiple(arch)
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    rng = np.random.default_rng(args.seed)
    val_rng = np.random.default_rng(1234)
    cand = bool(arch.get("candidate"))
    val_batches = [make_batch(val, val_rng, 4, w, h, args.train_disp, multiple, cand) for _ in range(4)]
    budget = args.minutes * 60
    step = 0
    while time.time() - t_start < budget:
        y, ref, gt, c = make_batch(train, rng, args.batch, w, h, args.train_disp, multiple, cand)
        net.train()
        for group in opt.param_groups:  # cosine decay over the wall-clock budget
            group["lr"] = args.lr * 0.5 * (1 + np.cos(np.pi * min(1.0, (time.time() - t_start) / budget)))
        pred, rough = net.colorize(y, ref, c)
        # MSE on the final CbCr (the paper's loss) plus a deep-supervision term on the rough colorization C'.
        loss = torch.nn.functional.mse_loss(pred, gt) + args.rough_weight * torch.nn.functional.mse_loss(rough, gt)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if step % 25 == 0:
            print(
                f"step {step} loss {loss.item():.6f} psnr {chroma_psnr(pred.detach(), gt):.2f} "
                f"t {time.time() - t_start:.0f}s",
                flush=True,
            )
        if step % 200 == 0:
            torch.save(net.state_dict(), out / "weights.pt")
    net.eval()
    with torch.no_grad():
        val_psnr = float(np.mean([chroma_psnr(net(y, r, c), g) for y, r, g, c in val_batches]))
        base_psnr = float(np.mean([chroma_psnr(r[:, 1:], g) for y, r, g, c in val_batches]))
        cand_psnr = float(np.mean([chroma_psnr(c, g) for y, r, g, c in val_batches])) if cand else None
    torch.save(net.state_dict(), out / "weights.pt")
    record = {
        "config": args.config,
        "arch": arch,
        "steps": step,
        "batch": args.batch,
        "crop": [w, h],
        "train_disp": args.train_disp,
        "lr": args.lr,
        "optimizer": "Adam, cosine decay over the time budget",
        "loss": f"MSE on CbCr + {args.rough_weight} x MSE of the rough colorization",
        "seconds": round(time.time() - t_start, 1),
        "threads": 1,
        "data": "synthetic stereo from depth layers over package stills (streamfuse.synth.package_stills); "
        f"{SMALL_SHARE:.0%} small-baseline pairs (disparity <= 8 px, per-layer vertical wobble <= 2 px); "
        f"validation stills held out: {', '.join(VALIDATION_STILLS)}",
        "command": "python " + " ".join(sys.argv),
        "validation": {
            "chroma_psnr_db": round(val_psnr, 2),
            "unaligned_reference_chroma_psnr_db": round(base_psnr, 2),
            "guided_candidate_chroma_psnr_db": cand_psnr and round(cand_psnr, 2),
            "pairs": 16,
        },
    }
    (out / "train.json").write_text(json.dumps(record, indent=2))
    print(json.dumps(record["validation"]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

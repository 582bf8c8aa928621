"""``streamfuse eval --protocol nir``: NIR colorization on the held-aside categories of ``shared/data/nir-train``.

Two modes, per pair of the held-aside categories (``streamfuse.data.nir.HELD_OUT``, never trained on):

- **reference**: the aligned NIR at full size, plus the colour image warped by a small random homography
  (each corner moved by up to ``AMPLITUDE`` of the image size, as parallax between the two cameras) and
  area-downsampled x4. Seeded per pair, so every engine and every run sees the same cases.
- **prior**: the NIR alone.

Scores (8-pixel border excluded): RGB PSNR, chroma PSNR, SSIM, per category and pooled over all pairs (mean of
per-pair dB). Baselines: ``nir-localfit`` (the classical NIR→YCbCr local fit at the colour camera's
resolution, applied at full resolution), ``guided`` with the NIR as its mono frame, and ``nir-grey`` (NIR as
grey) — the only baseline of prior mode.
"""

from __future__ import annotations

import json
import sys
import time
import zlib
from collections import defaultdict
from pathlib import Path
from typing import TextIO

import cv2
import numpy as np

from streamfuse.color import gray_to_rgb
from streamfuse.data import nir as nirdata
from streamfuse.data.degrade import downsample, warp_homography
from streamfuse.engines import load_engine
from streamfuse.evaluation.images import _label, error_heatmap
from streamfuse.imageio import write_rgb
from streamfuse.metrics import score

SCALE = 4
AMPLITUDE = 0.01  # largest homography corner shift, as a fraction of the image size
BASELINES_REFERENCE = ("nir-localfit", "guided", "nir-grey")
BASELINES_PRIOR = ("nir-grey",)
DEFAULT_ENGINES = ("cocolor", "cocolor-paper")
PRIOR_ENGINES = ("cocolor", "cocolor-paper", "nir-grey")  # engines with a prior (NIR-only) mode
QUICK_PAIRS = 3
IMAGES_PER_CATEGORY = 2
PAPER_EPFL_PSNR = 20.14  # CoColor's RGB PSNR on EPFL (paper, Table 2): the figure prior mode is reported next to


def case_homography(w: int, h: int, key: str, amplitude: float = AMPLITUDE) -> np.ndarray:
    """The protocol's fixed random homography of one pair (seeded by its name)."""
    rng = np.random.default_rng(zlib.crc32(key.encode()))
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dst = src + rng.uniform(-amplitude, amplitude, (4, 2)).astype(np.float32) * np.float32([w, h])
    return cv2.getPerspectiveTransform(src, dst)


def reference_of(pair: nirdata.NirPair) -> np.ndarray:
    """The colour camera's view of a pair: homography-shifted, area-downsampled x4."""
    h, w = pair.nir.shape
    hom = case_homography(w, h, f"{pair.category}/{pair.name}")
    return downsample(warp_homography(pair.rgb, hom), SCALE)


def side_by_side(nir: np.ndarray, ref: np.ndarray | None, out: np.ndarray, truth: np.ndarray, label: str) -> np.ndarray:
    """NIR | reference (or "none") | output | truth | chroma error, at half size."""
    h, w = nir.shape
    ref_up = (
        cv2.resize(ref, (w, h), interpolation=cv2.INTER_NEAREST) if ref is not None else np.zeros((h, w, 3), np.uint8)
    )
    panels = [
        _label(gray_to_rgb(nir), "NIR"),
        _label(ref_up, f"colour x{SCALE}" if ref is not None else "no colour camera"),
        _label(out, label),
        _label(truth, "truth"),
        _label(error_heatmap(out, truth), "CbCr error"),
    ]
    strip = np.hstack(panels)
    return cv2.resize(strip, (strip.shape[1] // 2, strip.shape[0] // 2), interpolation=cv2.INTER_AREA)


def run_nir(
    engines: tuple[str, ...],
    folder: str | Path | None = None,
    limit: int = 0,
    images_dir: str | Path | None = None,
    options: dict[str, dict] | None = None,
    progress: TextIO | None = None,
) -> list[dict]:
    """Score every engine in both modes on the held-aside pairs; one record per (pair, mode, engine)."""
    ref_engines = list(dict.fromkeys([*BASELINES_REFERENCE, *engines]))
    prior_engines = [e for e in dict.fromkeys([*BASELINES_PRIOR, *engines]) if e in PRIOR_ENGINES]
    loaded = {n: load_engine(n, **(options or {}).get(n, {})) for n in dict.fromkeys(ref_engines + prior_engines)}
    records: list[dict] = []
    shown: dict[str, int] = defaultdict(int)
    start = time.perf_counter()
    for cat in nirdata.HELD_OUT:
        paths = nirdata.pair_paths((cat,), folder)
        for path in paths[:limit] if limit else paths:
            pair = nirdata.load_pair(path)
            ref = reference_of(pair)
            save = images_dir is not None and shown[cat] < IMAGES_PER_CATEGORY
            shown[cat] += 1
            for mode, names in (("reference", ref_engines), ("prior", prior_engines)):
                for name in names:
                    eng = loaded[name]
                    t0 = time.perf_counter()
                    out = eng.colorize(pair.nir, eng.prepare_reference(ref) if mode == "reference" else None)
                    ms = (time.perf_counter() - t0) * 1000.0
                    m = score(out, pair.rgb)
                    records.append(
                        {
                            "protocol": "nir",
                            "dataset": cat,
                            "case": pair.name,
                            "scale": SCALE if mode == "reference" else 0,
                            "target": mode,
                            "engine": name,
                            **{k: round(v, 4) for k, v in m.items()},
                            "ms": round(ms, 2),
                        }
                    )
                    if save:
                        img = side_by_side(
                            pair.nir,
                            ref if mode == "reference" else None,
                            out,
                            pair.rgb,
                            f"{name} {m['psnr_rgb']:.2f} dB",
                        )
                        file = Path(images_dir) / f"nir_{cat}_{pair.name}_{mode}_{name}.png"
                        write_rgb(file, img)
            if progress is not None:
                print(f"[{time.perf_counter() - start:6.1f}s] nir {cat} {pair.name}", file=progress, flush=True)
    return records


def summarize_nir(records: list[dict]) -> list[dict]:
    """Means per (mode, category, engine) plus a ``pooled`` row per (mode, engine) over every pair."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in records:
        groups[(r["target"], r["dataset"], r["engine"])].append(r)
        groups[(r["target"], "pooled", r["engine"])].append(r)
    rows = []
    for (mode, cat, engine), recs in groups.items():
        row = {"mode": mode, "dataset": cat, "engine": engine, "n": len(recs)}
        for k in ("psnr_rgb", "psnr_cbcr", "ssim", "ms"):
            row[k] = round(float(np.mean([r[k] for r in recs])), 4)
        rows.append(row)
    return rows


def table(rows: list[dict], mode: str) -> str:
    """Markdown table of one mode: one row per category (and pooled), RGB dB / CbCr dB / SSIM per engine."""
    sel = [r for r in rows if r["mode"] == mode]
    engines = list(dict.fromkeys(r["engine"] for r in sel))
    cats = [c for c in dict.fromkeys(r["dataset"] for r in sel) if c != "pooled"] + ["pooled"]
    head = ["category", "n"] + [f"{e} RGB / CbCr dB, SSIM" for e in engines]
    lines = [f"**{mode}**" + (f" (x{SCALE} colour camera)" if mode == "reference" else " (NIR only)"), ""]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    by = {(r["dataset"], r["engine"]): r for r in sel}
    for c in cats:
        cells = [c, str(by[(c, engines[0])]["n"])]
        for e in engines:
            r = by.get((c, e))
            cells.append("—" if r is None else f"{r['psnr_rgb']:.2f} / {r['psnr_cbcr']:.2f}, {r['ssim']:.3f}")
        lines.append("| " + " | ".join(cells) + " |")
    if mode == "prior":
        lines.append(f"\nPaper (CoColor, EPFL, Table 2): {PAPER_EPFL_PSNR:.2f} dB RGB PSNR (its own split and size).")
    return "\n".join(lines)


def evaluate_nir(
    engines: tuple[str, ...],
    folder: str | Path | None = None,
    quick: bool = False,
    json_path: str | Path | None = None,
    images_dir: str | Path | None = None,
    options: dict[str, dict] | None = None,
    command: str = "",
    out: TextIO | None = None,
    progress: TextIO | None = None,
) -> dict:
    """Run the NIR protocol, print both tables, write the JSON (records + summary) and the side-by-sides."""
    out = out if out is not None else sys.stdout
    progress = progress if progress is not None else sys.stderr
    t0 = time.perf_counter()
    records = run_nir(engines, folder, QUICK_PAIRS if quick else 0, images_dir, options, progress)
    rows = summarize_nir(records)
    print(table(rows, "reference"), file=out)
    print("", file=out)
    print(table(rows, "prior"), file=out)
    doc = {
        "protocol": "nir",
        "command": command,
        "held_out": list(nirdata.HELD_OUT),
        "amplitude": AMPLITUDE,
        "scale": SCALE,
        "seconds": round(time.perf_counter() - t0, 1),
        "summary": rows,
        "records": records,
    }
    if json_path is not None:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(doc, indent=1) + "\n")
        print(f"wrote {json_path}", file=out)
    return doc

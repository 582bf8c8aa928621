"""The ``oldfilm`` protocol: restore + colorize damaged stills and film clips from a colour reference.

Cases (fixed, seeded, so every run and engine sees the same damage):
- stills: the package stills held aside from training (``streamfuse.data.oldfilm.HELD_OUT_STILLS``), longer side
  at most 512 px, damaged as old photos; the reference is the picture itself, shifted, rotated, scaled and
  elastically warped (no colour jitter);
- clips: the opencv-doc videos (vtest, Megamind, tree), 4 shots each: the reference is the clean colour frame
  that opens the shot, the scored clip is its frames 13-20, damaged as film (flicker, weave, dust, drifting
  scratches). Engines run through ``open_stream()`` with that one reference.

Scores: RGB PSNR, CbCr PSNR and SSIM per still and per clip frame (8-pixel border excluded), tCE per clip, and a
retrieval check: for each clip and still, a folder of its reference and 9 decoys (other datasets' references),
and whether ``streamfuse.engines.retrieval`` picks the right one. Baselines: ``grey`` (the damaged input as is)
and ``denoise+guided`` (3×3 median and non-local means, then ``guided`` from the reference).
"""

from __future__ import annotations

import json
import sys
import time
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import cv2
import numpy as np

from streamfuse.color import gray_to_rgb
from streamfuse.data.oldfilm import HELD_OUT_STILLS, damage_clip, damage_photo, reference_view
from streamfuse.engines import load_engine
from streamfuse.evaluation.data import data_dir, require
from streamfuse.evaluation.stream import temporal_chroma_error
from streamfuse.imageio import write_rgb
from streamfuse.metrics import score

VIDEOS = ("vtest.avi", "Megamind.avi", "tree.avi")
SHOTS_PER_VIDEO = 4
SHOT_LEN = 20  # reference = frame 0 of the shot, scored frames = 12..19
SCORED = (12, SHOT_LEN)
STILL_SIDE = 512
DECOYS = 9
STILL_PICTURES = 3  # side-by-sides written for the first stills (and the first shot of each video)
BASELINES = ("grey", "denoise+guided")
DEFAULT_METHODS = ("grey", "denoise+guided", "pikfix", "pikfix-paper")


@dataclass
class OldFilmCase:
    """A damaged still (one frame) or clip (several), its clean colour truth and its reference."""

    kind: str  # "still" or "clip"
    dataset: str
    case: str
    degraded: list[np.ndarray]
    truth: list[np.ndarray]
    ref: np.ndarray


def _rng(*key: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32("/".join(key).encode()))


def still_cases() -> Iterator[OldFilmCase]:
    """The held-aside package stills, damaged as old photos."""
    from streamfuse.data.stills import package_stills

    for name, img in package_stills():
        if name not in HELD_OUT_STILLS:
            continue
        f = STILL_SIDE / max(img.shape[:2])
        if f < 1:
            img = cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        img = np.ascontiguousarray(img[: img.shape[0] // 8 * 8, : img.shape[1] // 8 * 8])
        rng = _rng("still", name)
        degraded = damage_photo(img, rng)
        ref = reference_view(img, rng, jitter=0.0)
        yield OldFilmCase("still", "stills", Path(name.split(":", 1)[1]).stem, [degraded], [img], ref)


def clip_cases(folder: Path | None = None, shots: int = SHOTS_PER_VIDEO) -> Iterator[OldFilmCase]:
    """Shots of the opencv-doc videos (no scene cut), damaged as film; reference = the shot's first frame."""
    from streamfuse.data.video import frame_differences, read_clips, select_clips

    root = data_dir(folder)
    for name in VIDEOS:
        path = require(root, name)
        diffs, count = frame_differences(path)
        starts = select_clips(diffs, count, SHOT_LEN, shots)
        for start, frames in read_clips(path, starts, SHOT_LEN).items():
            truth = frames[SCORED[0] : SCORED[1]]
            degraded = damage_clip(truth, _rng("clip", name, str(start)))
            yield OldFilmCase("clip", Path(name).stem, f"shot{start:04d}", degraded, truth, frames[0])


# --- methods -----------------------------------------------------------------------------------------------------


def denoise(grey: np.ndarray) -> np.ndarray:
    """The classical restoration of the ``denoise+guided`` baseline: 3×3 median, then non-local means."""
    return cv2.fastNlMeansDenoising(cv2.medianBlur(grey, 3), None, h=10, templateWindowSize=7, searchWindowSize=21)


def make_method(name: str, options: dict | None = None) -> Callable[[OldFilmCase], list[np.ndarray]]:
    """A method maps a case to its RGB outputs (one per degraded frame); stream engines see the frames in order."""
    if name == "grey":
        return lambda case: [gray_to_rgb(g) for g in case.degraded]
    if name == "denoise+guided":
        guided = load_engine("guided", **(options or {}))

        def run(case: OldFilmCase) -> list[np.ndarray]:
            stream = guided.open_stream()
            stream.push_reference(case.ref)
            return [stream.colorize(denoise(g)) for g in case.degraded]

        return run
    engine = load_engine(name, **(options or {}))

    def run_engine(case: OldFilmCase) -> list[np.ndarray]:
        if case.kind == "still":
            return [engine.colorize(case.degraded[0], engine.prepare_reference(case.ref))]
        stream = engine.open_stream()
        stream.push_reference(case.ref)
        return [stream.colorize(g) for g in case.degraded]

    return run_engine


# --- metrics -----------------------------------------------------------------------------------------------------


def case_record(case: OldFilmCase, method: str, outputs: list[np.ndarray], ms: float) -> dict:
    """Metrics of one case: per-frame means of RGB PSNR, CbCr PSNR and SSIM; tCE for clips."""
    scores = [score(o, t) for o, t in zip(outputs, case.truth, strict=True)]
    rec = {
        "protocol": "oldfilm",
        "kind": case.kind,
        "dataset": case.dataset,
        "case": case.case,
        "engine": method,
        **{k: round(float(np.mean([s[k] for s in scores])), 4) for k in ("psnr_rgb", "psnr_cbcr", "ssim")},
        "tce": round(temporal_chroma_error(outputs, case.truth), 4) if case.kind == "clip" else None,
        "ms": round(ms / len(outputs), 2),
    }
    return rec


# --- retrieval ---------------------------------------------------------------------------------------------------


def retrieval_trials(cases: list[OldFilmCase], decoys: int = DECOYS) -> list[tuple[OldFilmCase, list[int]]]:
    """Per case: candidate indices into ``cases`` (its own reference first, then ``decoys`` references of other
    datasets, drawn with a fixed seed)."""
    trials = []
    for i, case in enumerate(cases):
        others = [j for j, c in enumerate(cases) if c.dataset != case.dataset or (c.kind == "still" and j != i)]
        rng = _rng("decoys", case.dataset, case.case)
        picks = rng.choice(len(others), size=min(decoys, len(others)), replace=False)
        trials.append((case, [i, *[others[k] for k in picks]]))
    return trials


def retrieval_rate(cases: list[OldFilmCase], model: str = "pikfix-paper") -> dict:
    """Share of cases for which the retrieval picks the case's own reference among it and 9 decoys."""
    from streamfuse.engines.retrieval import ReferenceRetriever

    retriever = ReferenceRetriever(model)
    hits, per_kind = 0, defaultdict(lambda: [0, 0])
    descs = [retriever.describe_reference(c.ref) for c in cases]
    for case, cand in retrieval_trials(cases):
        pick = retriever.best(case.degraded[0], [descs[j] for j in cand])[0]
        ok = pick == 0
        hits += ok
        per_kind[case.kind][0] += ok
        per_kind[case.kind][1] += 1
    return {
        "rate": round(hits / max(1, len(cases)), 4),
        "n": len(cases),
        "decoys": DECOYS,
        **{f"rate_{k}": round(v[0] / v[1], 4) for k, v in per_kind.items()},
    }


# --- the command ---------------------------------------------------------------------------------------------


def side_by_side(case: OldFilmCase, outputs: dict[str, np.ndarray], frame: int = 0) -> np.ndarray:
    """input | reference | each method's output | truth, labelled."""
    from streamfuse.evaluation.images import _label

    h, w = case.truth[frame].shape[:2]
    ref = cv2.resize(case.ref, (w, h), interpolation=cv2.INTER_AREA)
    panels = [_label(gray_to_rgb(case.degraded[frame]), "input"), _label(ref, "reference")]
    panels += [_label(out, name) for name, out in outputs.items()]
    panels.append(_label(case.truth[frame], "truth"))
    return np.hstack(panels)


def summarize(records: list[dict]) -> list[dict]:
    """Means per (kind, engine), and pooled over every case ("all")."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in records:
        groups[(r["kind"], r["engine"])].append(r)
        groups[("all", r["engine"])].append(r)
    rows = []
    for (kind, engine), recs in groups.items():
        row = {"kind": kind, "engine": engine, "n": len(recs)}
        for m in ("psnr_rgb", "psnr_cbcr", "ssim", "tce", "ms"):
            vals = [r[m] for r in recs if r[m] is not None]
            row[m] = round(float(np.mean(vals)), 4) if vals else None
        rows.append(row)
    engines = list(dict.fromkeys(r["engine"] for r in records))
    kinds = ("all", "still", "clip")
    return sorted(rows, key=lambda r: (kinds.index(r["kind"]), engines.index(r["engine"])))


def markdown_table(summary: list[dict]) -> str:
    """One row per (cases, engine): RGB PSNR, CbCr PSNR, SSIM, tCE, ms per frame."""
    lines = [
        "| cases | engine | n | RGB PSNR dB | CbCr PSNR dB | SSIM | tCE | ms/frame |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in summary:
        tce_ = "—" if r["tce"] is None else f"{r['tce']:.3f}"
        lines.append(
            f"| {r['kind']} | {r['engine']} | {r['n']} | {r['psnr_rgb']:.2f} | {r['psnr_cbcr']:.2f} | "
            f"{r['ssim']:.4f} | {tce_} | {r['ms']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def evaluate_oldfilm(
    methods: tuple[str, ...] | None = None,
    data: str | Path | None = None,
    json_path: str | Path | None = None,
    images_dir: str | Path | None = None,
    quick: bool = False,
    retrieval: bool = True,
    engine_options: dict[str, dict] | None = None,
    command: str = "",
    out: TextIO | None = None,
) -> dict:
    """Run the protocol for ``methods`` and print the table; writes the JSON and side-by-sides when asked."""
    out = out if out is not None else sys.stdout
    methods = methods or DEFAULT_METHODS
    start = time.perf_counter()
    cases = list(still_cases()) + list(clip_cases(data, 1 if quick else SHOTS_PER_VIDEO))
    if quick:
        cases = cases[:2] + [c for c in cases if c.kind == "clip"]
    runners = {m: make_method(m, (engine_options or {}).get(m)) for m in methods}
    records, shown = [], set()
    for case in cases:
        firsts = {}
        for name, run in runners.items():
            t0 = time.perf_counter()
            outputs = run(case)
            records.append(case_record(case, name, outputs, (time.perf_counter() - t0) * 1000.0))
            firsts[name] = outputs[-1]
        key = case.dataset if case.kind == "clip" else f"still:{case.case}"
        wanted = case.kind == "clip" or sum(k.startswith("still:") for k in shown) < STILL_PICTURES
        if images_dir is not None and key not in shown and wanted:
            shown.add(key)
            path = Path(images_dir) / f"oldfilm_{case.dataset}_{case.case}.png"
            write_rgb(path, side_by_side(case, firsts, frame=len(case.truth) - 1))
        print(
            f"[{time.perf_counter() - start:6.1f}s] {case.kind} {case.dataset} {case.case}", file=sys.stderr, flush=True
        )
    summary = summarize(records)
    doc = {"protocol": "oldfilm", "command": command, "records": records, "summary": summary}
    if retrieval:
        doc["retrieval"] = retrieval_rate(cases)
    doc["seconds"] = round(time.perf_counter() - start, 1)
    print(markdown_table(summary), file=out)
    if retrieval:
        r = doc["retrieval"]
        print(f"retrieval: right reference among {r['decoys']} decoys for {r['rate']:.1%} of {r['n']} cases", file=out)
    if json_path is not None:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(doc, indent=1) + "\n")
        print(f"wrote {json_path}", file=out)
    return doc

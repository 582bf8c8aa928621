"""The ``scsr`` protocol: colorization and super-resolution at once (SCSNet, issue 14).

- Input: the BT.601 luma of a high-resolution (HR) colour frame, area-downsampled by s ∈ {2, 3.3, 4}. The HR frame
  is first cropped (top-left) to the largest size whose round(round(H/s)·s) is H again, so the engine's
  round(h·s) output has the truth's size.
- Referential reference: the colour frame 6 frames earlier in the same clip, at full size; on stills, an
  elastic warp (Simard et al. 2003) of the image, seeded by the file name.
- Score: RGB PSNR, chroma PSNR and SSIM against the HR frame (``streamfuse.metrics.score``), plus the
  Hasler–Süsstrunk colourfulness of output and truth.
- Data: the opencv-doc videos (clips as in the video protocol: fixed starts, 6-frame gap) and the held-aside
  stills ``HELD_ASIDE`` (never trained on).
- Baselines: ``bicubic-grey`` (bicubic luma as a grey image) and ``bicubic+guided`` (bicubic luma colorized by
  ``guided`` from the reference); the learned engines in both modes (``scsnet``/``scsnet-auto`` ...).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from streamfuse.color import gray_to_rgb, luma
from streamfuse.evaluation.case import Case

SCALES: tuple[float, ...] = (2.0, 3.3, 4.0)
REF_GAP = 6  # the referential reference is the frame this many frames earlier
CLIPS_PER_VIDEO = 8
QUICK_CLIPS = 2
# Held-aside stills (opencv-doc examples/data): the SCSNet trainers exclude them.
HELD_ASIDE: tuple[str, ...] = ("baboon.jpg", "fruits.jpg", "home.jpg", "messi5.jpg", "butterfly.jpg")
MAX_STILL_SIDE = 768


def fit_size(n: int, scale: float) -> int:
    """The largest N <= n with round(round(N/s)·s) == N (so an s-times output has the truth's size)."""
    for m in range(n, 0, -1):
        if round(round(m / scale) * scale) == m:
            return m
    raise ValueError(f"no size <= {n} fits scale {scale}")


def protocol_input(truth: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """(cropped HR truth, area-downsampled BT.601 luma) for one HR colour frame and scale."""
    h, w = fit_size(truth.shape[0], scale), fit_size(truth.shape[1], scale)
    truth = np.ascontiguousarray(truth[:h, :w])
    small = (round(w / scale), round(h / scale))
    return truth, cv2.resize(luma(truth), small, interpolation=cv2.INTER_AREA)


def elastic_warp(rgb: np.ndarray, rng: np.random.Generator, alpha: float = 0.04, sigma: float = 0.08) -> np.ndarray:
    """Elastic distortion (Simard et al.): a random displacement field smoothed by a Gaussian, plus a small
    random affine. ``alpha``/``sigma`` are fractions of the image's shorter side."""
    h, w = rgb.shape[:2]
    side = min(h, w)
    s = max(1.0, sigma * side)
    fields = []
    for _ in range(2):
        noise = rng.uniform(-1, 1, (h, w)).astype(np.float32)
        smooth = cv2.GaussianBlur(noise, (0, 0), s)
        smooth *= alpha * side / (np.abs(smooth).max() + 1e-6)
        fields.append(smooth)
    angle = rng.uniform(-3, 3)
    zoom = rng.uniform(0.97, 1.03)
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, zoom)
    m[:, 2] += rng.uniform(-0.02, 0.02, 2) * side
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    ax = m[0, 0] * gx + m[0, 1] * gy + m[0, 2] + fields[0]
    ay = m[1, 0] * gx + m[1, 1] * gy + m[1, 2] + fields[1]
    return cv2.remap(rgb, ax.astype(np.float32), ay.astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def colourfulness(rgb: np.ndarray) -> float:
    """Hasler–Süsstrunk colourfulness M = σ_rgyb + 0.3·μ_rgyb (rg = R−G, yb = (R+G)/2 − B)."""
    x = rgb.astype(np.float64)
    rg = x[..., 0] - x[..., 1]
    yb = 0.5 * (x[..., 0] + x[..., 1]) - x[..., 2]
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def bicubic_grey(mono: np.ndarray, scale: float) -> np.ndarray:
    """The ``bicubic-grey`` baseline: the bicubic-upsampled luma as a grey RGB image."""
    h, w = mono.shape
    up = cv2.resize(mono, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_CUBIC)
    return gray_to_rgb(up)


def _seed(name: str) -> int:
    return zlib.crc32(name.encode())


def read_still(path: Path) -> np.ndarray:
    """An RGB still, area-shrunk so its longer side is at most MAX_STILL_SIDE."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"cannot read still {path}")
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    f = MAX_STILL_SIDE / max(rgb.shape[:2])
    if f < 1:
        rgb = cv2.resize(rgb, (round(rgb.shape[1] * f), round(rgb.shape[0] * f)), interpolation=cv2.INTER_AREA)
    return rgb


def still_cases(folder: Path, scales: tuple[float, ...] = SCALES) -> Iterator[Case]:
    """Held-aside stills: reference = a seeded elastic warp of the full image."""
    for name in HELD_ASIDE:
        path = folder / name
        if not path.is_file():
            continue
        rgb = read_still(path)
        ref = elastic_warp(rgb, np.random.default_rng(_seed(name)))
        for scale in scales:
            truth, mono = protocol_input(rgb, scale)
            crop = np.ascontiguousarray(ref[: truth.shape[0], : truth.shape[1]])
            yield Case("scsr", "stills", Path(name).stem, scale, "elastic", mono, crop, truth)


def video_clip_frames(path: Path, clips: int) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """(frame index, reference frame t-6, target frame t) for ``clips`` evenly spread targets of a video.

    Targets are spread over the container's frame count; one decoding pass keeps only the frames needed (a
    target past the decodable end is dropped).
    """
    from streamfuse.evaluation.video import iter_frames

    cap = cv2.VideoCapture(str(path))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    if n <= REF_GAP + 1:
        return []
    last = min(n - 1, max(REF_GAP, int(n * 0.9)))  # clear of a truncated tail
    targets = sorted({int(t) for t in np.linspace(REF_GAP, last, min(clips, last - REF_GAP + 1)).round()})
    wanted = set(targets) | {t - REF_GAP for t in targets}
    kept: dict[int, np.ndarray] = {}
    for i, frame in enumerate(iter_frames(path)):
        if i in wanted:
            kept[i] = frame
        if i >= targets[-1]:
            break
    return [(t, kept[t - REF_GAP], kept[t]) for t in targets if t in kept and t - REF_GAP in kept]


def video_scsr_cases(path: Path, clips: int, scales: tuple[float, ...] = SCALES) -> Iterator[Case]:
    """Cases of one video: target frame t, reference frame t-6 at full size (cropped as the truth is)."""
    dataset = path.stem
    for t, ref, frame in video_clip_frames(path, clips):
        for scale in scales:
            truth, mono = protocol_input(frame, scale)
            crop = np.ascontiguousarray(ref[: truth.shape[0], : truth.shape[1]])
            yield Case("scsr", dataset, f"frame{t:04d}", scale, "ref-6", mono, crop, truth)


# --- running the protocol ---------------------------------------------------------------------------------------

BASELINES = ("bicubic-grey", "bicubic+guided")
DEFAULT_METHODS = ("bicubic-grey", "bicubic+guided", "scsnet", "scsnet-auto")
AUTO_SUFFIX = "-auto"  # "<engine>-auto": the engine in automatic mode (no reference)


def scsr_cases(folder: Path, scales: tuple[float, ...] = SCALES, quick: bool = False) -> Iterator[Case]:
    """Every case: the opencv-doc videos, then the held-aside stills."""
    from streamfuse.evaluation.data import VIDEOS, require

    clips = QUICK_CLIPS if quick else CLIPS_PER_VIDEO
    for name in VIDEOS:
        yield from video_scsr_cases(require(folder, name), clips, scales)
    yield from still_cases(folder, scales)


class Method:
    """One scored method of the protocol: a baseline, or a learned engine in one mode (engines made per scale)."""

    def __init__(self, name: str, options: dict | None = None) -> None:
        self.name = name
        self.options = dict(options or {})
        self.automatic = name.endswith(AUTO_SUFFIX)
        self.engine_name = name[: -len(AUTO_SUFFIX)] if self.automatic else name
        self._engines: dict[float, object] = {}
        self._guided = None

    def _engine(self, scale: float):
        from streamfuse.engines import load_engine

        if scale not in self._engines:
            self._engines[scale] = load_engine(self.engine_name, scale=scale, **self.options)
        return self._engines[scale]

    def __call__(self, case: Case) -> np.ndarray:
        if self.name == "bicubic-grey":
            return bicubic_grey(case.mono, case.scale)
        if self.name == "bicubic+guided":
            from streamfuse.engines import load_engine

            if self._guided is None:
                self._guided = load_engine("guided", **self.options)
            up = bicubic_grey(case.mono, case.scale)[..., 0]
            return self._guided.colorize(up, self._guided.prepare_reference(case.ref))
        eng = self._engine(case.scale)
        return eng.colorize(case.mono, None if self.automatic else eng.prepare_reference(case.ref))


def run_scsr(
    methods: tuple[str, ...],
    folder: Path,
    scales: tuple[float, ...] = SCALES,
    quick: bool = False,
    options: dict[str, dict] | None = None,
    on_result=None,
) -> list[dict]:
    """Score every method on every case; one record per (case, method) with colourfulness of output and truth."""
    import time

    from streamfuse.evaluation.runner import scale_value
    from streamfuse.metrics import score

    runners = [Method(m, (options or {}).get(m, {})) for m in methods]
    records = []
    for case in scsr_cases(folder, scales, quick):
        truth_m = colourfulness(case.truth)
        for method in runners:
            start = time.perf_counter()
            out = method(case)
            ms = (time.perf_counter() - start) * 1000.0
            if out.shape != case.truth.shape:
                raise ValueError(f"{method.name}: output {out.shape} differs from the truth {case.truth.shape}")
            rec = {
                "protocol": "scsr",
                "dataset": case.dataset,
                "case": case.case,
                "scale": scale_value(case.scale),
                "target": case.target,
                "engine": method.name,
                **{k: round(v, 4) for k, v in score(out, case.truth).items()},
                "ms": round(ms, 2),
                "colourfulness": round(colourfulness(out), 3),
                "colourfulness_truth": round(truth_m, 3),
            }
            records.append(rec)
            if on_result is not None:
                on_result(case, rec, out)
    return records


def summarize_scsr(records: list[dict]) -> list[dict]:
    """Means per (dataset, scale, method) and pooled over every case of a scale (dataset "pooled")."""
    from collections import defaultdict

    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in records:
        groups[(r["dataset"], r["scale"], r["engine"])].append(r)
        groups[("pooled", r["scale"], r["engine"])].append(r)
    rows = []
    for (dataset, scale, engine), recs in groups.items():
        row = {"dataset": dataset, "scale": scale, "engine": engine, "n": len(recs)}
        for k in ("psnr_rgb", "psnr_cbcr", "ssim", "ms", "colourfulness", "colourfulness_truth"):
            vals = [r[k] for r in recs if r[k] is not None and np.isfinite(r[k])]
            row[k] = round(float(np.mean(vals)), 4) if vals else None
        rows.append(row)
    rows.sort(key=lambda r: (r["dataset"] == "pooled", r["dataset"], r["scale"]))
    return rows


def scsr_table(rows: list[dict]) -> str:
    """Markdown: one row per dataset × scale × method (RGB dB, CbCr dB, SSIM, colourfulness / truth's, ms)."""
    lines = [
        "| dataset | scale | method | n | RGB dB | CbCr dB | SSIM | colourfulness (truth) | ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['dataset']} | x{r['scale']} | {r['engine']} | {r['n']} | {r['psnr_rgb']:.2f} | "
            f"{r['psnr_cbcr']:.2f} | {r['ssim']:.4f} | {r['colourfulness']:.1f} ({r['colourfulness_truth']:.1f}) | "
            f"{r['ms']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def acceptance(rows: list[dict]) -> list[str]:
    """The issue-14 acceptance checks on the pooled rows, one line each (met / not met, with the margins)."""
    pooled = {(r["scale"], r["engine"]): r for r in rows if r["dataset"] == "pooled"}
    lines = []
    for scale in sorted({s for s, _ in pooled}):
        grey, guided = pooled.get((scale, "bicubic-grey")), pooled.get((scale, "bicubic+guided"))
        for (s, name), r in sorted(pooled.items(), key=lambda kv: (kv[0][0], kv[0][1])):
            if s != scale or name in BASELINES:
                continue
            if name.endswith(AUTO_SUFFIX) and grey is not None:
                gain = r["psnr_rgb"] - grey["psnr_rgb"]
                ratio = r["colourfulness"] / max(1e-9, r["colourfulness_truth"])
                ok = gain >= 1.0 and ratio >= 0.5
                lines.append(
                    f"x{scale} {name}: {gain:+.2f} dB vs bicubic-grey (need +1.00), colourfulness "
                    f"{100 * ratio:.0f}% of truth (need 50%): {'met' if ok else 'NOT met'}"
                )
            elif not name.endswith(AUTO_SUFFIX) and guided is not None:
                gain = r["psnr_rgb"] - guided["psnr_rgb"]
                lines.append(
                    f"x{scale} {name}: {gain:+.2f} dB vs bicubic+guided (need +0.50): "
                    f"{'met' if gain >= 0.5 else 'NOT met'}"
                )
    return lines


def grid_image(case: Case, outputs: dict[str, np.ndarray]) -> np.ndarray:
    """Side-by-side: mono (nearest-upsampled), reference, each method's output, truth."""
    from streamfuse.evaluation.images import _label

    h, w = case.truth.shape[:2]
    mono = cv2.resize(gray_to_rgb(case.mono), (w, h), interpolation=cv2.INTER_NEAREST)
    ref = cv2.resize(case.ref, (w, h), interpolation=cv2.INTER_AREA)
    panels = [_label(mono, f"mono 1/{case.scale:g}"), _label(ref, "reference")]
    panels += [_label(img, name) for name, img in outputs.items()]
    panels.append(_label(case.truth, "truth"))
    return np.hstack(panels)


def evaluate_scsr(
    methods: tuple[str, ...],
    folder: str | Path | None = None,
    scales: tuple[float, ...] = SCALES,
    quick: bool = False,
    options: dict[str, dict] | None = None,
    json_path: str | Path | None = None,
    images_dir: str | Path | None = None,
    command: str = "",
) -> dict:
    """``streamfuse eval --protocol scsr``: run, print the tables and acceptance lines, write JSON and grids."""
    import json
    import time

    from streamfuse.evaluation.data import data_dir
    from streamfuse.imageio import write_rgb

    start = time.perf_counter()
    pending: dict[tuple, dict[str, np.ndarray]] = {}
    shown: dict[str, set] = {}

    def on_result(case: Case, rec: dict, out: np.ndarray) -> None:
        if images_dir is None:
            return
        picked = shown.setdefault(case.dataset, set())
        if case.case not in picked and len(picked) >= 1:
            return
        picked.add(case.case)
        key = (case.dataset, case.case, case.scale)
        pending.setdefault(key, {})[rec["engine"]] = out
        if len(pending[key]) == len(methods):
            path = Path(images_dir) / f"{case.dataset}_{case.case}_x{case.scale:g}.png"
            write_rgb(path, grid_image(case, pending.pop(key)))

    records = run_scsr(methods, data_dir(folder), scales, quick, options, on_result)
    rows = summarize_scsr(records)
    print(scsr_table(rows))
    checks = acceptance(rows)
    print("\n".join(checks))
    doc = {
        "protocol": "scsr",
        "command": command,
        "methods": list(methods),
        "scales": list(scales),
        "seconds": round(time.perf_counter() - start, 1),
        "summary": rows,
        "acceptance": checks,
        "records": records,
    }
    if json_path is not None:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(doc, indent=1) + "\n")
        print(f"wrote {json_path}")
    return doc

"""Means per dataset × setting × engine, the markdown table, and the JSON results file."""

from __future__ import annotations

import json
import math
import platform
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np

from streamfuse.evaluation.runner import RECORD_KEYS, SCHEMA_VERSION
from streamfuse.evaluation.stream import STREAM_KEYS

GROUP_KEYS = ("protocol", "dataset", "scale", "target", "engine")
METRICS = ("psnr_cbcr", "psnr_rgb", "ssim", "ms")
POOLED = "pooled"  # the stream protocol's mean over the clips of every dataset


def record_keys(record: dict) -> tuple[str, ...]:
    """The keys of a record: RECORD_KEYS, plus far PSNR and tCE for the stream protocol."""
    return RECORD_KEYS + STREAM_KEYS if record["protocol"] == "stream" else RECORD_KEYS


def summarize(records: list[dict]) -> list[dict]:
    """Mean of every metric per (protocol, dataset, scale, target, engine), in first-seen order.

    PSNR means are means of per-case PSNR in dB (the protocol's convention), not PSNR of the mean MSE.
    """
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for rec in records:
        groups[tuple(rec[k] for k in GROUP_KEYS)].append(rec)
    for rec in records:  # the stream protocol is also reported pooled over its datasets
        if rec["protocol"] == "stream":
            groups[("stream", POOLED, *(rec[k] for k in GROUP_KEYS[2:]))].append(rec)
    rows = []
    for key, recs in groups.items():
        row = dict(zip(GROUP_KEYS, key, strict=True))
        for m in METRICS + (STREAM_KEYS if row["protocol"] == "stream" else ()):
            values = [r[m] for r in recs if r[m] is not None and math.isfinite(r[m])]
            row[m] = round(float(np.mean(values)), 4) if values else None
        row["n"] = len(recs)
        rows.append(row)
    return rows


def _fmt(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _engine_table(
    summary: list[dict],
    row_key: Callable[[dict], tuple],
    head: list[str],
    metric_heads: list[str],
    metric_cells: Callable[[dict], list[str]],
) -> str:
    """A markdown table: one row per ``row_key`` (its cells, then n), one column group per engine."""
    engines = list(dict.fromkeys(r["engine"] for r in summary))
    rows: dict[tuple, dict[str, dict]] = defaultdict(dict)
    for r in summary:
        rows[row_key(r)][r["engine"]] = r
    cols = head + [f"{e} {m}" for e in engines for m in metric_heads]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for key, by_engine in rows.items():
        cells = [*key, str(max(r["n"] for r in by_engine.values()))]
        for e in engines:
            r = by_engine.get(e)
            cells += ["—"] * len(metric_heads) if r is None else metric_cells(r)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def markdown_table(summary: list[dict]) -> str:
    """One row per dataset × setting, one column group per engine: chroma PSNR, RGB PSNR, SSIM, ms.

    Stream-protocol rows go to their own table (``stream_table``) after the others.
    """
    stream = [r for r in summary if r["protocol"] == "stream"]
    if stream:
        rest = [r for r in summary if r["protocol"] != "stream"]
        return (markdown_table(rest) + "\n" if rest else "") + stream_table(stream)
    return _engine_table(
        summary,
        lambda r: (r["protocol"], r["dataset"], f"x{r['scale']}", r["target"]),
        ["protocol", "dataset", "scale", "target", "n"],
        ["CbCr dB", "RGB dB", "SSIM", "ms"],
        lambda r: [_fmt(r["psnr_cbcr"], 2), _fmt(r["psnr_rgb"], 2), _fmt(r["ssim"], 4), _fmt(r["ms"], 1)],
    )


def stream_table(summary: list[dict]) -> str:
    """The stream protocol's table: per dataset (and pooled) × setting, each engine's all/far chroma PSNR and tCE."""
    return _engine_table(
        summary,
        lambda r: (f"**{POOLED}**" if r["dataset"] == POOLED else r["dataset"], f"x{r['scale']}", r["target"][1:]),
        ["stream dataset", "s", "K", "clips"],
        ["all dB", "far dB", "tCE", "ms"],
        lambda r: [_fmt(r["psnr_cbcr"], 2), _fmt(r["psnr_cbcr_far"], 2), _fmt(r["tce"], 2), _fmt(r["ms"], 1)],
    )


def _finite(value):
    return None if isinstance(value, float) and not math.isfinite(value) else value


def results_document(records: list[dict], command: str, settings: dict) -> dict:
    """The JSON document: schema version, machine, command, settings, per-case records and the means."""
    clean = [{k: _finite(r[k]) for k in record_keys(r)} for r in records]
    return {
        "schema": SCHEMA_VERSION,
        "command": command,
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": _cpus()},
        "settings": settings,
        "records": clean,
        "summary": summarize(clean),
    }


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def write_json(path: str | Path, document: dict) -> None:
    """Write the results document (strict JSON: infinite PSNR is stored as null)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(document, indent=1, allow_nan=False) + "\n")

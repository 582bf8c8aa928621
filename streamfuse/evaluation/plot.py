"""A PNG plot of chroma PSNR per case and engine: one panel per video setting, one per stereo pair."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path


def _panel_and_label(r: dict) -> tuple[tuple, str]:
    """Video: a panel per (dataset, scale, target), x = clip. Stereo: a panel per pair, x = scale and setup."""
    if r["protocol"] == "stereo":
        return (r["dataset"],), f"x{r['scale']:g} {r['target']}"
    return (r["dataset"], f"x{r['scale']:g}", r["target"]), r["case"].removeprefix("clip")


def plot_chroma_psnr(records: list[dict], path: str | Path) -> Path:
    """Plot psnr_cbcr of every case, one line per engine."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels: dict[tuple, dict[str, list[tuple[str, float]]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        if r["psnr_cbcr"] is not None:
            key, label = _panel_and_label(r)
            panels[key][r["engine"]].append((label, r["psnr_cbcr"]))
    n = max(1, len(panels))
    cols = min(4, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
    for ax, (key, by_engine) in zip(axes.flat, panels.items(), strict=False):
        labels: list[str] = []
        for engine, points in by_engine.items():
            labels = labels or [lab for lab, _ in points]
            ax.plot(range(len(points)), [v for _, v in points], marker="o", ms=3, label=engine)
        step = max(1, len(labels) // 8)
        ax.set_xticks(range(0, len(labels), step), labels[::step], fontsize=7)
        ax.set_title(" ".join(key), fontsize=9)
        ax.set_ylabel("CbCr PSNR (dB)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=100)
    plt.close(fig)
    return p

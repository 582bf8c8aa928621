"""A PNG plot of chroma PSNR per case and engine: one panel per dataset × setting."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path


def plot_chroma_psnr(records: list[dict], path: str | Path) -> Path:
    """Plot psnr_cbcr of every case, one line per engine, one panel per (dataset, scale, target)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels: dict[tuple, dict[str, list[tuple[str, float]]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        if r["psnr_cbcr"] is not None:
            panels[(r["dataset"], r["scale"], r["target"])][r["engine"]].append((r["case"], r["psnr_cbcr"]))
    n = max(1, len(panels))
    cols = min(4, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
    for ax, ((dataset, scale, target), by_engine) in zip(axes.flat, panels.items(), strict=False):
        for engine, points in by_engine.items():
            ax.plot(range(len(points)), [v for _, v in points], marker="o", ms=3, label=engine)
        ax.set_title(f"{dataset} x{scale:g} {target}", fontsize=9)
        ax.set_xlabel("case", fontsize=8)
        ax.set_ylabel("CbCr PSNR (dB)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return p

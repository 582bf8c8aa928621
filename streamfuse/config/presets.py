"""Rig configs built in code: the synthetic rig used by the demo, benchmarks and tests."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from streamfuse.config.loader import config_from_dict
from streamfuse.config.schema import RigConfig


def demo_video() -> Path:
    """The colour clip shipped with the package (generated from public-domain stills by tools/make_demo_video.py)."""
    return Path(str(resources.files("streamfuse") / "assets" / "demo.mp4"))


def synthetic_rig_config(
    size: tuple[int, int] = (768, 576),
    scale: float = 4.0,
    engine: str = "guided",
    engine_options: dict | None = None,
    mode: str = "offline",
    output: str = "out/bench.mp4",
    video: str | Path | None = None,
    fps: float = 30.0,
    color_fps_ratio: float = 1.0,
    loop: bool = True,
) -> RigConfig:
    """A validated synthetic-rig config: mono ``size`` at ``fps``, colour ``scale``× coarser."""
    data = {
        "name": "synthetic",
        "mode": mode,
        "synthetic": {
            "video": str(video or demo_video()),
            "size": f"{size[0]}x{size[1]}",
            "scale": float(scale),
            "parallax": {"shift": [6.0, 2.0], "drift": [2.0, 0.0]},
            "color_fps_ratio": float(color_fps_ratio),
            "loop": loop,
        },
        "cameras": {
            "mono": {"role": "mono", "source": "synthetic", "fps": float(fps)},
            "color": {"role": "color", "source": "synthetic"},
        },
        "engine": {"name": engine, "options": dict(engine_options or {})},
        "outputs": [{"path": output}],
    }
    return config_from_dict(data)

"""One engine instance must survive a change of frame size (two videos, a camera reconnecting at another size).

OpenCV 5.0.0's DIS segfaulted when one object saw a second size, taking the process down, so each case runs in
a subprocess: a crash fails the test with its exit status instead of killing pytest.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from streamfuse.engines import available_engines

SIZES = "640x272,1280x720,320x240"
# The paper-size networks (and scsnet, which super-resolves) cost 20-130 s per 1280x720 frame on this 2-core CPU,
# so in the suite they run the same three shapes at a quarter (duallens-paper: an eighth) of each side: the same
# change of size on one instance, within the 30 s budget. Full-size runs: the transcode engineer's report.
HEAVY = {
    "ccdc-paper": "160x68,320x180,80x60",
    "duallens": "160x68,320x180,80x60",
    "duallens-paper": "80x34,160x90,40x30",
    "scsnet": "160x68,320x180,80x60",  # super-resolves: a 1280x720 frame becomes 2560x1440
    "scsnet-paper": "160x68,320x180,80x60",
}
UNAVAILABLE = 3  # exit status of the script when the engine has no shipped weights here

_SCRIPT = """
import sys
import numpy as np
from streamfuse.engines import EngineError, load_engine

name, sizes, scales, seed, fast = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5] == "1"
rng = np.random.default_rng(seed)
try:
    eng = load_engine(name)
except EngineError as exc:  # an engine whose weights are not shipped (yet) cannot be built: nothing to test
    print("unavailable:", exc, flush=True)
    sys.exit(3)
stream = eng.open_stream()
for text, scale in zip(sizes.split(","), map(float, scales.split(","))):
    w, h = (int(v) for v in text.split("x"))
    yy, xx = np.mgrid[0:h, 0:w]
    scene = np.stack([(xx * 255 // w), (yy * 255 // h), ((xx + yy) % 97) * 2], -1).astype(np.uint8)
    scene = np.clip(scene + rng.normal(0, 8, scene.shape), 0, 255).astype(np.uint8)
    ref = scene[:: max(1, int(scale)), :: max(1, int(scale))][: int(h / scale), : int(w / scale)].copy()
    mono = scene.mean(axis=2).astype(np.uint8)
    def check(out):  # this frame's size, or a uniform magnification of it (super-resolving engines: scsnet)
        assert out.ndim == 3 and out.shape[2] == 3 and out.dtype == np.uint8, out.shape
        assert out.shape[0] % h == 0 and out.shape[0] // h == out.shape[1] // w >= 1, (out.shape, (h, w))
        assert out.shape[1] % w == 0, (out.shape, (h, w))

    if fast:
        check(eng.colorize(mono, ref))  # the frame-wise API ...
    stream.push_reference(ref)  # ... and the stream API (temporal engines keep state here), same instance
    check(stream.colorize(mono))
    print("ok", text, scale, flush=True)
"""


def _run(name: str, sizes: str, scales: str, seed: int = 0) -> subprocess.CompletedProcess:
    fast = "0" if name in HEAVY else "1"
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT, name, sizes, scales, str(seed), fast],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if proc.returncode == UNAVAILABLE:
        pytest.skip(proc.stdout.strip())
    return proc


@pytest.mark.parametrize("name", available_engines())
def test_one_instance_survives_640x272_then_1280x720_then_320x240(name: str) -> None:
    proc = _run(name, HEAVY.get(name, SIZES), "4,4,2")
    assert proc.returncode == 0, f"{name} exit {proc.returncode}:\n{proc.stdout}\n{proc.stderr[-2000:]}"
    assert proc.stdout.count("ok ") == 3


@pytest.mark.parametrize("seed", [1, 2])
def test_guided_survives_random_sizes_and_scales(seed: int) -> None:
    import numpy as np

    rng = np.random.default_rng(seed)
    sizes = ",".join(f"{rng.integers(64, 900)}x{rng.integers(64, 600)}" for _ in range(8))
    scales = ",".join(f"{rng.uniform(1, 8):.2f}" for _ in range(8))
    proc = _run("guided", sizes, scales, seed)
    assert proc.returncode == 0, f"sizes {sizes} scales {scales}: exit {proc.returncode}\n{proc.stderr[-2000:]}"
    assert proc.stdout.count("ok ") == 8

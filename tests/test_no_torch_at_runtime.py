"""The one check that inference never imports torch or a GPU stack (DESIGN §3; torch only in models/, train/ and
runtime/torch.py): a fresh process imports the command line and the nodes, runs every registered engine on a small
frame, and then looks at ``sys.modules``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CODE = """
import json, sys
import numpy as np
import streamfuse, streamfuse.cli, streamfuse.nodes.fuse, streamfuse.nodes.launcher, streamfuse.transcode
from streamfuse.engines import available_engines, load_engine

ran, skipped = [], {}
mono, ref = np.full((64, 96), 120, np.uint8), np.full((32, 48, 3), 90, np.uint8)
for name in available_engines():
    try:
        engine = load_engine(name)
    except Exception as exc:  # an engine whose shipped files are absent here cannot run; it is listed, not hidden
        skipped[name] = f"{type(exc).__name__}: {exc}"[:200]
        continue
    stream = engine.open_stream()
    stream.push_reference(ref)
    stream.colorize(mono)
    try:
        engine.colorize(mono, None)  # the reference-free mode (a learned prior) of engines that have one
    except Exception:
        pass
    ran.append(name)
bad = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "tensorrt", "pycuda") or m == "cuda.bindings")
print(json.dumps({"ran": ran, "skipped": skipped, "imported": bad}))
"""


def test_inference_never_imports_torch_or_a_gpu_stack() -> None:
    out = subprocess.run([sys.executable, "-c", CODE], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["imported"] == [], f"imported at run time: {result['imported']}"
    assert {"naive", "guided", "ccdc", "duallens"} <= set(result["ran"]), result["skipped"]

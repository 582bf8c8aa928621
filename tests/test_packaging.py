"""Packaging stays complete: every package folder is listed, and the runtime never imports torch."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_is_listed_in_pyproject() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "streamfuse").rglob("__init__.py")}
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"
    assert "streamfuse_engines" in listed


def test_runtime_does_not_import_torch_or_gpu_stacks() -> None:
    code = (
        "import sys, streamfuse, streamfuse.cli, streamfuse.nodes.fuse, streamfuse.nodes.launcher;"
        "e = streamfuse.load_engine('guided');"
        "bad = [m for m in ('torch', 'tensorrt', 'pycuda', 'cuda.bindings') if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""

"""`streamfuse --version`, runtime dependencies pinned to tested ranges, and the demo config from any directory."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

import streamfuse
from streamfuse.config import load_config
from streamfuse.sources.synthetic import SyntheticCamera

ROOT = Path(__file__).resolve().parents[1]


def test_version_flag_prints_the_package_version() -> None:
    proc = subprocess.run([sys.executable, "-m", "streamfuse", "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"streamfuse {streamfuse.__version__}"


def test_every_runtime_dependency_has_a_lower_and_an_upper_bound() -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for dep in deps:
        ops = {spec.operator for spec in Requirement(dep).specifier}
        assert ">=" in ops and "<" in ops, f"{dep}: pin it to the range CI tests, e.g. >=5.0,<5.1"


def test_demo_config_works_from_any_directory(tmp_path: Path) -> None:
    copy = tmp_path / "elsewhere" / "demo.yaml"
    copy.parent.mkdir()
    shutil.copy(ROOT / "configs" / "demo.yaml", copy)
    cfg = load_config(copy)
    assert cfg.synthetic.video is None  # the clip shipped with the package
    frames = list(SyntheticCamera(cfg.synthetic, "mono", 30, limit=2).frames())
    assert len(frames) == 2 and frames[0].image.ndim == 2

"""rig.yaml validation: errors name the key and the line, and `streamfuse run` starts nothing on a bad config."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from streamfuse.config import load_config
from streamfuse.errors import ConfigError

GOOD = """\
name: t
synthetic:
  video: {video}
  scale: 4
cameras:
  mono: {{role: mono, source: synthetic, fps: 30}}
  color: {{role: color, source: synthetic}}
outputs:
  - path: {out}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rig.yaml"
    path.write_text(text)
    return path


@pytest.fixture
def good(tmp_path: Path, small_video: Path) -> str:
    return GOOD.format(video=small_video, out=tmp_path / "o.mp4")


def test_good_config_loads(tmp_path: Path, good: str) -> None:
    cfg = load_config(write(tmp_path, good))
    assert cfg.mono_camera == "mono" and cfg.color_cameras == ["color"]
    assert cfg.synthetic.scale == 4.0 and cfg.mode == "offline"


@pytest.mark.parametrize(
    "edit,message",
    [
        (("scale: 4", "scael: 4"), r"rig.yaml:4: key 'synthetic.scael' unknown key"),
        (("scale: 4", "scale: big"), r"rig.yaml:4: key 'synthetic.scale' must be a float"),
        (("fps: 30", "fps: [30]"), r"rig.yaml:6: key 'cameras.mono.fps' must be a float"),
        (("role: mono", "role: infrared"), r"key 'cameras.mono.role' must be one of mono, color, nir"),
        (("role: mono", "role: color"), r"key 'cameras' needs at least one camera with role: mono"),
        (("  scale: 4\n", "  scale: 0.5\n"), r"key 'synthetic.scale' must be >= 1"),
        (("name: t\n", "name: t\nmode: realtime\n"), r"key 'mode' must be one of offline, live"),
    ],
)
def test_errors_name_key_and_line(tmp_path: Path, good: str, edit: tuple[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, good.replace(*edit)))


def test_missing_file_is_named(tmp_path: Path, good: str, small_video: Path) -> None:
    text = good.replace(str(small_video), str(tmp_path / "nope.mp4"))
    with pytest.raises(ConfigError, match=r"rig.yaml:3: key 'synthetic.video' file not found: .*nope.mp4"):
        load_config(write(tmp_path, text))


def test_missing_required_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"key 'cameras' is required but missing"):
        load_config(write(tmp_path, "name: x\noutputs: [{path: a.mp4}]\n"))


def test_not_yaml_and_empty(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "cameras: [\n"))
    with pytest.raises(ConfigError, match="empty"):
        load_config(write(tmp_path, ""))
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "absent.yaml")


def test_run_with_bad_config_exits_nonzero_and_starts_nothing(tmp_path: Path, good: str) -> None:
    path = write(tmp_path, good.replace("scale: 4", "scale: 4\n  colour: 3"))
    proc = subprocess.run(
        [sys.executable, "-m", "streamfuse", "run", str(path)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert "key 'synthetic.colour' unknown key" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "o.mp4").exists()


def test_unknown_engine_is_refused_before_start(tmp_path: Path, good: str) -> None:
    path = write(tmp_path, good + "engine: {name: magic}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "streamfuse", "run", str(path)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2 and "unknown engine 'magic'" in proc.stderr

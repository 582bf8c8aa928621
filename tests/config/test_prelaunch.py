"""Every problem that can be known before launch is found by load_config, in under 2 s, as file:line: key.

These are the cases a new user hit (issue 16): each used to start the nodes and fail ~31 s later without a line.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import moving_frames, write_video

import streamfuse.preflight  # noqa: F401 - registers the checks, as `streamfuse run` and `transcode` do
from streamfuse.cli import main
from streamfuse.config import load_config
from streamfuse.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
CALIBRATION_640x480 = ROOT / "calibration" / "opencv-sample.yaml"


def rig_yaml(mono: str, colour: str, engine: str = "", output: str = "", mono_extra: str = "") -> str:
    return (
        "name: t\n"
        "cameras:\n"
        f"  mono: {{role: mono, source: file, path: {mono}{mono_extra}}}\n"
        f"  color: {{role: color, source: file, path: {colour}}}\n"
        "engine:\n"
        "  name: guided\n"
        f"{engine}"
        "outputs:\n"
        "  - path: out.mp4\n"
        f"{output}"
    )


@pytest.fixture
def media(tmp_path: Path) -> Path:
    frames = moving_frames(6, 120, 160)
    write_video(tmp_path / "mono.mp4", frames)
    write_video(tmp_path / "colour.mp4", [cv2.resize(f, (40, 30), interpolation=cv2.INTER_AREA) for f in frames])
    write_video(tmp_path / "big.mp4", [cv2.resize(f, (320, 240)) for f in frames])
    data = (tmp_path / "mono.mp4").read_bytes()
    (tmp_path / "truncated.mp4").write_bytes(data[: len(data) // 3])
    (tmp_path / "garbage.mp4").write_bytes(b"\x13garbage" * 500)
    (tmp_path / "empty.mp4").write_bytes(b"")
    return tmp_path


# case: (yaml pieces, the key named, its line in the file, what the message says)
CASES = {
    "unknown engine option": (dict(engine="  options: {colour: 1}\n"), "engine.options.colour", 7, "no option"),
    "bad engine option value": (dict(engine="  options: {preset: turbo}\n"), "engine.options.preset", 7, "preset"),
    "unknown engine": (dict(engine_name="nosuchengine"), "engine.name", 6, "unknown engine 'nosuchengine'"),
    "truncated video": (dict(mono="truncated.mp4"), "cameras.mono.path", 3, "truncated.mp4"),
    "garbage video": (dict(mono="garbage.mp4"), "cameras.mono.path", 3, "garbage.mp4"),
    "empty video": (dict(mono="empty.mp4"), "cameras.mono.path", 3, "is empty"),
    "calibration at another size": (
        dict(mono_extra=f", calibration: {CALIBRATION_640x480}"),
        "cameras.mono.calibration",
        3,
        "was made at 640x480 but this camera delivers 160x120",
    ),
    "reference larger than the mono frame": (dict(colour="big.mp4"), "cameras.color.path", 4, "larger than the mono"),
    "invalid x264 preset": (dict(output="    preset: turbo\n"), "outputs[0].preset", 9, "unknown preset 'turbo'"),
    "crf out of range": (dict(output="    crf: 99\n"), "outputs[0].crf", 9, "must be 0..51"),
    "codec not available": (dict(output="    codec: nosuchcodec\n"), "outputs[0].codec", 9, "nosuchcodec"),
}


def _write_case(media: Path, case: str) -> tuple[Path, str, int]:
    spec, key, line, _ = CASES[case]
    spec = dict(spec)
    name = spec.pop("engine_name", "guided")
    text = rig_yaml(spec.pop("mono", "mono.mp4"), spec.pop("colour", "colour.mp4"), **spec)
    path = media / "rig.yaml"
    path.write_text(text.replace("name: guided", f"name: {name}"))
    return path, key, line


@pytest.mark.parametrize("case", list(CASES))
def test_each_case_is_refused_before_launch_with_file_line_key(media: Path, case: str) -> None:
    path, key, line = _write_case(media, case)
    started = time.monotonic()
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert time.monotonic() - started < 2.0
    message = str(err.value)
    assert message.startswith(f"{path}:{line}: key '{key}'"), message
    assert re.search(CASES[case][3], message), message


def test_training_config_given_to_run_says_what_it_is(tmp_path: Path) -> None:
    path = tmp_path / "train.yaml"
    path.write_text("# a training config\nmodel: ccdc\ndata: data/x\nepochs: 3\nlr: 0.001\n")
    with pytest.raises(ConfigError, match=rf"{re.escape(str(path))}:2: key 'model' this is a training config"):
        load_config(path)


def test_run_refuses_in_under_2_s_and_starts_nothing(media: Path, capsys: pytest.CaptureFixture) -> None:
    path, key, _line = _write_case(media, "crf out of range")
    started = time.monotonic()
    code = main(["run", str(path)])
    assert time.monotonic() - started < 2.0
    assert code == 2
    err = capsys.readouterr().err
    assert f"{path}:" in err and f"key '{key}'" in err
    assert "node" not in err  # no node was started, so none reported an error
    assert not (media / "out.mp4").exists()


def test_a_good_rig_passes_and_mismatched_aspect_is_warned(media: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = media / "rig.yaml"
    path.write_text(rig_yaml("mono.mp4", "colour.mp4"))
    assert load_config(path).cameras["mono"].path.endswith("mono.mp4")
    assert "aspect" not in caplog.text
    write_video(media / "wide.mp4", [cv2.resize(f, (60, 20)) for f in moving_frames(3, 120, 160)])
    path.write_text(rig_yaml("mono.mp4", "wide.mp4"))
    load_config(path)
    assert "different aspect ratios" in caplog.text


def test_colour_of_another_scene_is_warned(media: Path, caplog: pytest.LogCaptureFixture) -> None:
    rng = np.random.default_rng(5)
    write_video(media / "noise.mp4", [rng.integers(0, 256, (30, 40, 3), dtype=np.uint8) for _ in range(3)])
    (media / "rig.yaml").write_text(rig_yaml("mono.mp4", "noise.mp4"))
    load_config(media / "rig.yaml")
    assert "may show another scene" in caplog.text
    caplog.clear()
    (media / "rig.yaml").write_text(rig_yaml("mono.mp4", "colour.mp4"))
    load_config(media / "rig.yaml")
    assert "another scene" not in caplog.text

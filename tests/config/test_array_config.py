"""Camera arrays in rig.yaml: partners named or picked by position, outputs per mono camera, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamfuse.config import load_config
from streamfuse.errors import ConfigError

ARRAY = """\
name: arr
synthetic: {{video: {video}, scale: 4}}
cameras:
  left:  {{role: mono, source: synthetic, position: [-0.2, 0, 0]{left}}}
  mid:   {{role: mono, source: synthetic, position: [0.05, 0, 0], view_shift: [3, 0]}}
  right: {{role: mono, source: synthetic, position: [0.3, 0, 0]}}
  cl:    {{role: color, source: synthetic, position: [-0.1, 0, 0]}}
  cr:    {{role: color, source: synthetic{cr}}}
outputs:
  - {{path: {out}/left.mp4, camera: left}}
  - {{path: {out}/all.mp4, mosaic: true}}
  - {{path: {out}/first.mp4}}
"""


def load(tmp_path: Path, video: Path, left: str = "", cr: str = ", position: [0.2, 0, 0]", outputs: str = ""):
    text = ARRAY.format(video=video, out=tmp_path, left=left, cr=cr) + outputs
    path = tmp_path / "rig.yaml"
    path.write_text(text)
    return load_config(path)


def test_nearest_partner_by_position_and_named_partner(tmp_path: Path, small_video: Path) -> None:
    cfg = load(tmp_path, small_video, left=", partner: cr")
    assert cfg.mono_cameras == ["left", "mid", "right"] and cfg.color_cameras == ["cl", "cr"]
    assert {m: cfg.partner_of(m) for m in cfg.mono_cameras} == {"left": "cr", "mid": "cl", "right": "cr"}
    assert cfg.cameras["mid"].view_shift == (3.0, 0.0)


def test_outputs_name_mono_cameras(tmp_path: Path, small_video: Path) -> None:
    cfg = load(tmp_path, small_video)
    assert [(o.camera, o.mosaic) for o in cfg.outputs] == [("left", False), (None, True), ("left", False)]
    with pytest.raises(ConfigError, match=r"key 'outputs\[3\].camera' must name a mono camera"):
        load(tmp_path, small_video, outputs=f"  - {{path: {tmp_path}/x.mp4, camera: cl}}\n")


def test_a_partner_is_needed_when_it_cannot_be_picked(tmp_path: Path, small_video: Path) -> None:
    with pytest.raises(ConfigError, match=r"key 'cameras.left.partner' is needed: the rig has 2 colour cameras"):
        load(tmp_path, small_video, cr="")  # cr has no position: the nearest cannot be chosen
    with pytest.raises(ConfigError, match=r"rig.yaml: key 'cameras.left.partner' must name a color camera"):
        load(tmp_path, small_video, left=", partner: mid")

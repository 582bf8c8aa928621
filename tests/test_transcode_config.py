"""The rig a transcode builds: two file cameras, the output keeps the mono file's timing and audio, the single-image
mode never counts its reference as stale, --config supplies sync/engine/encoder settings, bad input fails first."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest
from avclips import write_clip
from conftest import moving_frames

from streamfuse.errors import ConfigError
from streamfuse.transcode import SINGLE_REFERENCE_AGE_MS, TranscodeJob, build_config


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    frames = moving_frames(5, 120, 160)
    small = [cv2.resize(f, (40, 30), interpolation=cv2.INTER_AREA) for f in frames]
    ref = tmp_path / "ref.png"
    cv2.imwrite(str(ref), cv2.cvtColor(small[0], cv2.COLOR_RGB2BGR))
    return {
        "mono": write_clip(tmp_path / "mono.mp4", frames, fps=10, start_s=5.0, audio=True),
        "colour": write_clip(tmp_path / "colour.mp4", small, fps=10, audio=False),
        "ref": ref,
    }


def test_two_file_cameras_and_an_output_that_keeps_the_mono_timing(files: dict, tmp_path: Path) -> None:
    cfg = build_config(
        TranscodeJob(mono=str(files["mono"]), color=str(files["colour"]), output=str(tmp_path / "o.mp4"))
    )
    assert cfg.mode == "offline"
    assert {n: (c.role, c.source) for n, c in cfg.cameras.items()} == {
        "mono": ("mono", "file"),
        "color": ("color", "file"),
    }
    assert cfg.cameras["mono"].fps == 10  # an image folder would play at the mono rate
    assert cfg.outputs[0].mux_from == str(files["mono"].resolve())
    assert cfg.engine.name == "guided"


def test_single_reference_image_is_never_stale(files: dict, tmp_path: Path) -> None:
    cfg = build_config(TranscodeJob(mono=str(files["mono"]), ref=str(files["ref"]), output=str(tmp_path / "o.mkv")))
    assert cfg.sync.max_reference_age_ms == SINGLE_REFERENCE_AGE_MS and cfg.sync.fallback == "last"


def test_config_template_gives_sync_engine_and_encoder(files: dict, tmp_path: Path) -> None:
    rig = tmp_path / "rig.yaml"
    rig.write_text(
        "cameras:\n"
        f"  mono: {{role: mono, source: file, path: {files['mono']}}}\n"
        f"  color: {{role: color, source: file, path: {files['colour']}}}\n"
        "sync: {max_reference_age_ms: 250, fallback: grey}\n"
        "engine: {name: naive}\n"
        "outputs:\n  - {path: x.mp4, crf: 23, preset: fast}\n"
    )
    job = TranscodeJob(mono=str(files["mono"]), color=str(files["colour"]), output=str(tmp_path / "o.mp4"))
    job.config = str(rig)
    cfg = build_config(job)
    assert (cfg.sync.max_reference_age_ms, cfg.sync.fallback, cfg.engine.name) == (250, "grey", "naive")
    assert (cfg.outputs[0].crf, cfg.outputs[0].preset) == (23, "fast")
    job.engine, job.options = "guided", {"preset": "fast"}
    cfg = build_config(job)
    assert cfg.engine.name == "guided" and cfg.engine.options == {"preset": "fast"}


def test_bad_inputs_fail_before_anything_starts(files: dict, tmp_path: Path) -> None:
    out = str(tmp_path / "o.mp4")
    with pytest.raises(ConfigError, match="exactly one of --color"):
        build_config(TranscodeJob(mono=str(files["mono"]), output=out))
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(Exception, match="empty"):
        build_config(TranscodeJob(mono=str(tmp_path / "empty.mp4"), color=str(files["colour"]), output=out))
    with pytest.raises(ConfigError, match="key 'cameras.color.path' the colour reference .* is larger"):
        build_config(TranscodeJob(mono=str(files["colour"]), color=str(files["mono"]), output=out))
    with pytest.raises(ConfigError, match="key 'engine.options.colour'"):
        build_config(
            TranscodeJob(mono=str(files["mono"]), color=str(files["colour"]), output=out, options={"colour": 1})
        )

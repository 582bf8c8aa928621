"""The config a node process gets is the launcher's validated config, field for field."""

from __future__ import annotations

from pathlib import Path

from streamfuse.config import load_config, synthetic_rig_config
from streamfuse.config.loader import dump_config
from streamfuse.config.schema import EndpointConfig
from streamfuse.nodes.handoff import read_config, write_config


def test_a_rig_config_survives_the_handoff_unchanged(tmp_path: Path, small_video: Path) -> None:
    cfg = synthetic_rig_config(
        (160, 120), engine="naive", mode="live", output=str(tmp_path / "o.mkv"), video=small_video
    )
    cfg.endpoints = {"mono": EndpointConfig(url="tcp://127.0.0.1:5555")}
    dump_config(cfg, tmp_path / "rig.yaml")
    loaded = load_config(tmp_path / "rig.yaml")  # the launcher's config, with the loader's internal fields
    back = read_config(write_config(loaded, tmp_path / "handoff.json"))
    assert back == loaded
    assert isinstance(back.cameras["mono"].size, (tuple, type(None)))
    assert back.source_file == str(tmp_path / "rig.yaml") and back.endpoints["mono"].url == "tcp://127.0.0.1:5555"

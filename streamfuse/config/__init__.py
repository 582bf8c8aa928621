"""Typed rig configuration: schema dataclasses and the YAML loader."""

from streamfuse.config.loader import config_from_dict, dump_config, load_config
from streamfuse.config.presets import demo_video, synthetic_rig_config
from streamfuse.config.schema import (
    CameraConfig,
    EndpointConfig,
    EngineConfig,
    OutputConfig,
    RigConfig,
    SyncConfig,
    SyntheticConfig,
)

__all__ = [
    "CameraConfig",
    "EndpointConfig",
    "EngineConfig",
    "OutputConfig",
    "RigConfig",
    "SyncConfig",
    "SyntheticConfig",
    "config_from_dict",
    "demo_video",
    "dump_config",
    "synthetic_rig_config",
    "load_config",
]

"""Typed rig configuration: schema dataclasses and the YAML loader."""

from streamfuse.config.loader import config_from_dict, load_config
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
    "load_config",
]

"""Fusion engines: the contract, the registry, and one module per engine."""

from streamfuse.engines.base import Engine, EngineError, EngineStream, ReferenceState
from streamfuse.engines.registry import available_engines, load_engine, register_engine

__all__ = [
    "Engine",
    "EngineError",
    "EngineStream",
    "ReferenceState",
    "available_engines",
    "load_engine",
    "register_engine",
]

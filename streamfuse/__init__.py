"""streamfuse: fuse a high-resolution mono camera with a low-resolution colour camera into colour video."""

from streamfuse.engines import (
    Engine,
    EngineError,
    ReferenceState,
    available_engines,
    load_engine,
    register_engine,
)

__version__ = "0.1.0"

__all__ = [
    "Engine",
    "EngineError",
    "ReferenceState",
    "__version__",
    "available_engines",
    "load_engine",
    "register_engine",
]

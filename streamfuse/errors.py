"""Error types that reach users as one clear line (collected here so the CLI can catch them all)."""

from __future__ import annotations

from streamfuse.engines.base import EngineError
from streamfuse.runtime.base import BackendUnavailable


class ConfigError(ValueError):
    """A rig.yaml problem; the message names the file, line and key."""


class SourceError(RuntimeError):
    """A camera, file or stream that cannot be opened or read; the message names it."""


class ImageReadError(ValueError):
    """An image file that is missing or cannot be decoded."""


USER_ERRORS: tuple[type[Exception], ...] = (
    ConfigError,
    SourceError,
    ImageReadError,
    EngineError,
    BackendUnavailable,
    FileNotFoundError,
)

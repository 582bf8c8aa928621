"""Error types that reach users as one clear line (collected here so the CLI can catch them all).

This module sits at the bottom of the package and imports nothing from it: the engine and backend errors are
defined here and re-exported by ``streamfuse.engines.base`` and ``streamfuse.runtime.base``.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A rig.yaml problem; the message names the file, line and key."""


class SourceError(RuntimeError):
    """A camera, file or stream that cannot be opened or read; the message names it."""


class ImageReadError(ValueError):
    """An image file that is missing or cannot be decoded."""


class EngineError(ValueError):
    """Bad engine name, option or input; the message names the problem and the fix."""


class BackendUnavailable(RuntimeError):
    """The requested backend cannot run here; the message names what is missing and what to use instead."""


USER_ERRORS: tuple[type[Exception], ...] = (
    ConfigError,
    SourceError,
    ImageReadError,
    EngineError,
    BackendUnavailable,
    FileNotFoundError,
)

"""The one ``WxH`` size parser, used by the CLI, the rig config, the TensorRT profiles and the trainers."""

from __future__ import annotations


def parse_size(text: str, example: str = "768x576") -> tuple[int, int]:
    """Parse ``'WxH'`` (e.g. ``'768x576'``) into ``(W, H)``.

    Raises:
        ValueError: not two positive integers joined by ``x``; the message shows ``example``.

    Example:
        >>> parse_size("192x128")
        (192, 128)
    """
    try:
        w, h = (int(v) for v in str(text).strip().lower().split("x"))
    except ValueError as exc:
        raise ValueError(f"size must look like {example}, got {text!r}") from exc
    if w <= 0 or h <= 0:
        raise ValueError(f"size must be positive, got {text!r}")
    return w, h


def format_size(size: tuple[int, int]) -> str:
    """``(W, H)`` -> ``'WxH'``."""
    return f"{size[0]}x{size[1]}"

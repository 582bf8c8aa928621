"""Shipped engine assets: where they live, their manifests, and the checksums the manifests record."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from streamfuse.engines.base import EngineError


def engines_dir() -> Path:
    """Folder of the shipped engine assets: the installed ``streamfuse_engines`` package or the repo's engines/."""
    try:
        import streamfuse_engines

        return Path(streamfuse_engines.__file__).parent
    except ImportError:
        return Path(__file__).resolve().parents[2] / "engines"


def load_manifest(model: str | Path, hint: str = "train one with `streamfuse train`") -> tuple[dict, Path]:
    """Read ``<model>/manifest.json`` (a shipped model name or a folder path) and return it with the folder.

    Raises:
        EngineError: no manifest there; the message says how to get one (``hint``).
    """
    folder = Path(model) if Path(model).is_dir() else engines_dir() / str(model)
    path = folder / "manifest.json"
    if not path.is_file():
        raise EngineError(
            f"no model at {folder} (manifest.json missing); {hint}, or reinstall streamfuse to get the shipped weights"
        )
    return json.loads(path.read_text()), folder


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file (manifests record it for every weight file)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()

"""Find the ONNX graphs an engine ships (through its manifest) and the TensorRT hints that go with them.

Shipped engines live in ``engines/NAME/manifest.json`` (installed as the package ``streamfuse_engines``). The
manifest names its graphs under ``"onnx"`` and any ``"onnx_*"`` key (e.g. ``"onnx_reference"``), each a file, a
list of files or a ``{role: file}`` mapping, relative to the manifest; without such keys every ``*.onnx`` beside
it is used. An optional ``"tensorrt"`` section may give ``"input_scales": {input_name: ratio | [low, high]}``
(size relative to the profile's frame) for inputs that are not at the frame's resolution.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from streamfuse.engines.assets import engines_dir
from streamfuse.engines.base import EngineError


@dataclass(frozen=True)
class EngineGraphs:
    """The ONNX graphs of one shipped engine and its per-input scale hints for TensorRT profiles."""

    name: str
    onnx: list[Path]
    input_scales: dict[str, float | tuple[float, float]] = field(default_factory=dict)


def _listed(value: object, folder: Path) -> list[Path]:
    if isinstance(value, str):
        items = [value]
    elif isinstance(value, list):
        items = value
    elif isinstance(value, dict):
        items = list(value.values())
    else:
        raise EngineError(f"manifest key 'onnx' in {folder} must be a file name, a list or a mapping")
    return [folder / str(item) for item in items]


def _scales(section: object, manifest: Path) -> dict[str, float | tuple[float, float]]:
    raw = section.get("input_scales", {}) if isinstance(section, dict) else {}
    out: dict[str, float | tuple[float, float]] = {}
    for name, value in raw.items():
        if isinstance(value, (int, float)):
            out[name] = float(value)
        elif isinstance(value, list) and len(value) == 2:
            out[name] = (float(value[0]), float(value[1]))
        else:
            raise EngineError(f"{manifest}: tensorrt.input_scales.{name} must be a number or [low, high]")
    return out


def resolve_engine_graphs(name: str, root: str | Path | None = None) -> EngineGraphs:
    """The ONNX files and TensorRT hints for engine ``name``.

    Raises:
        EngineError: no such engine folder, unreadable manifest, or no ONNX graph; the message says what to do.
    """
    base = Path(root) if root is not None else engines_dir()
    folder = base / name
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        shipped = sorted(p.parent.name for p in base.glob("*/manifest.json"))
        raise EngineError(
            f"engine {name!r} ships no manifest ({manifest} not found); engines with ONNX graphs: "
            f"{', '.join(shipped) or 'none'}; or pass --onnx PATH"
        )
    try:
        record = json.loads(manifest.read_text())
    except (OSError, ValueError) as exc:
        raise EngineError(f"cannot read {manifest}: {exc}") from exc
    if not isinstance(record, dict):
        raise EngineError(f"{manifest} must hold a JSON object")
    keys = [k for k in record if k in ("onnx", "graphs") or k.startswith("onnx_")]
    graphs = [g for k in keys for g in _listed(record[k], folder)] if keys else sorted(folder.glob("*.onnx"))
    graphs = list(dict.fromkeys(graphs))
    missing = [str(p) for p in graphs if not p.is_file()]
    if missing or not graphs:
        raise EngineError(
            f"engine {name!r}: ONNX graph(s) missing ({', '.join(missing) or f'no .onnx in {folder}'}); "
            "re-install streamfuse or export the engine first"
        )
    return EngineGraphs(name, graphs, _scales(record.get("tensorrt"), manifest))


def input_scales_beside(onnx: str | Path) -> dict[str, float | tuple[float, float]]:
    """The ``tensorrt.input_scales`` of the manifest next to an ONNX file ({} when there is none), so a plan built
    at run time is shaped like the one ``streamfuse build-engine`` makes."""
    manifest = Path(onnx).parent / "manifest.json"
    try:
        record = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return {}
    return _scales(record.get("tensorrt"), manifest) if isinstance(record, dict) else {}

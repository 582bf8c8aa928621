"""Hand a validated RigConfig to a node process: JSON written by the launcher, rebuilt by the node, not re-parsed.

The config is parsed and checked once, by the command that starts the run. The nodes it spawns read this file
back into the same dataclasses (type hints decide each field's type) without running the loader's checks again,
so a run never fails on a check that passed a moment before, and a config built in code needs no YAML file.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any

from streamfuse.config.schema import RigConfig


def write_config(cfg: RigConfig, path: str | Path) -> Path:
    """Write ``cfg`` (every field, internal ones included) as JSON; returns the path."""
    out = Path(path)
    out.write_text(json.dumps(dataclasses.asdict(cfg)))
    return out


def read_config(path: str | Path) -> RigConfig:
    """The RigConfig that ``write_config`` wrote."""
    return _build(RigConfig, json.loads(Path(path).read_text()))


def _build(tp: Any, value: Any) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if value is None:
        return None
    if origin in (typing.Union, types.UnionType):
        return _build(next(a for a in args if a is not type(None)), value)
    if dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        return tp(**{f.name: _build(hints[f.name], value[f.name]) for f in dataclasses.fields(tp) if f.name in value})
    if origin is list:
        return [_build(args[0], v) for v in value]
    if origin is tuple:
        items = args if len(args) != 2 or args[1] is not Ellipsis else (args[0],) * len(value)
        return tuple(_build(a, v) for a, v in zip(items, value, strict=True))
    if origin is dict:
        return {k: _build(args[1], v) for k, v in value.items()}
    return value

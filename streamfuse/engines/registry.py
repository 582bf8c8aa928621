"""Engine registry: one ``load_engine`` used by the CLI, the YAML config and the library API."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

from streamfuse.engines.base import Engine, EngineError

# Built-in engines, imported only when asked for, so a CPU install never imports a GPU or training stack.
_BUILTIN: dict[str, str] = {
    "naive": "streamfuse.engines.naive:NaiveEngine",
    "guided": "streamfuse.engines.guided:GuidedEngine",
    "guided-temporal": "streamfuse.engines.guided_temporal:GuidedTemporalEngine",
    "ccdc": "streamfuse.engines.ccdc:CCDCEngine",
    "ccdc-paper": "streamfuse.engines.ccdc:CCDCPaperEngine",
    "duallens": "streamfuse.engines.duallens:DualLensEngine",
    "duallens-paper": "streamfuse.engines.duallens:DualLensPaperEngine",
    "scsnet": "streamfuse.engines.scsnet:SCSNetEngine",
    "scsnet-paper": "streamfuse.engines.scsnet:SCSNetPaperEngine",
    "cocolor": "streamfuse.engines.cocolor:CoColorEngine",
    "cocolor-paper": "streamfuse.engines.cocolor:CoColorPaperEngine",
    "nir-localfit": "streamfuse.engines.cocolor:NirLocalFitEngine",
    "nir-grey": "streamfuse.engines.cocolor:NirGreyEngine",
    "pikfix": "streamfuse.engines.pikfix:PikFixEngine",
    "pikfix-paper": "streamfuse.engines.pikfix:PikFixPaperEngine",
}
_REGISTERED: dict[str, Callable[..., Engine]] = {}


def register_engine(name: str, factory: Callable[..., Engine]) -> None:
    """Register a third-party engine factory under ``name``; a name that is taken raises."""
    if name in _BUILTIN or name in _REGISTERED:
        raise EngineError(f"engine name {name!r} is already registered; pick another name")
    _REGISTERED[name] = factory


def register_builtin(name: str, target: str) -> None:
    """Register a built-in engine by ``module:Class`` path (used by engine packages inside streamfuse)."""
    if name in _BUILTIN and _BUILTIN[name] != target:
        raise EngineError(f"engine name {name!r} is already registered as {_BUILTIN[name]}")
    _BUILTIN[name] = target


def available_engines() -> list[str]:
    """Names of every engine that ``load_engine`` accepts."""
    return sorted({*_BUILTIN, *_REGISTERED})


def _factory(name: str) -> Callable[..., Engine]:
    if name in _REGISTERED:
        return _REGISTERED[name]
    if name not in _BUILTIN:
        raise EngineError(f"unknown engine {name!r}; available engines: {', '.join(available_engines())}")
    module, _, attr = _BUILTIN[name].partition(":")
    return getattr(importlib.import_module(module), attr)


def load_engine(name: str, **options: Any) -> Engine:
    """Create an engine by registry name.

    Args:
        name: registry name, e.g. ``"guided"``; see ``available_engines()``.
        **options: engine constructor options (the ``engine.options`` section of a rig.yaml).

    Raises:
        EngineError: unknown name or unknown/invalid option; the message lists what is accepted.

    Example:
        >>> eng = load_engine("naive")
        >>> state = eng.prepare_reference(ref_rgb)  # doctest: +SKIP
    """
    factory = _factory(name)
    params = inspect.signature(factory).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(options) - set(params))
        if unknown:
            accepted = ", ".join(p for p in params if p != "self") or "none"
            raise EngineError(f"engine {name!r} has no option(s) {', '.join(unknown)}; accepted: {accepted}")
    try:
        return factory(**options)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, EngineError):
            raise
        raise EngineError(f"engine {name!r}: bad options {options}: {exc}") from exc

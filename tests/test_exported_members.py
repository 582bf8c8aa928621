"""The public API stays honest (as httpx's tests/test_exported_members.py): each public package's ``__all__`` lists
exactly the names it defines or re-exports, so nothing public is forgotten and nothing internal leaks."""

from __future__ import annotations
import __future__

import importlib
import inspect

import pytest

PACKAGES = [
    "streamfuse",
    "streamfuse.config",
    "streamfuse.engines",
    "streamfuse.runtime",
    "streamfuse.sources",
    "streamfuse.transport",
    "streamfuse.nodes.launcher",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_lists_exactly_the_public_members(name: str) -> None:
    module = importlib.import_module(name)
    exported = {n for n in module.__all__ if not n.startswith("__")}  # dunders such as __version__ are extra
    members = {
        key
        for key, value in vars(module).items()
        if not key.startswith("_") and not inspect.ismodule(value) and not isinstance(value, __future__._Feature)
    }
    assert members - exported == set(), f"{name}: public but not in __all__"
    assert exported - members == set(), f"{name}: in __all__ but not defined"
    assert len(module.__all__) == len(set(module.__all__)), f"{name}: __all__ lists a name twice"

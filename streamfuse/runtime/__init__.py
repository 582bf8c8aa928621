"""Inference backends behind one Executor interface; GPU backends import lazily."""

from streamfuse.runtime.base import BackendUnavailable, Executor

__all__ = ["BackendUnavailable", "Executor"]

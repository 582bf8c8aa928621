"""The generated references (docs/CONFIG.md, docs/CLI.md) match the code."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _gen():
    spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "tools" / "gen_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_config_reference_is_current() -> None:
    assert (ROOT / "docs" / "CONFIG.md").read_text() == _gen().config_reference(), "run python tools/gen_docs.py"


def test_cli_reference_is_current() -> None:
    assert (ROOT / "docs" / "CLI.md").read_text() == _gen().cli_reference(), "run python tools/gen_docs.py"


def test_ci_runs_exactly_the_readme_test_command() -> None:
    ci_command = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci_command in (ROOT / "README.md").read_text()

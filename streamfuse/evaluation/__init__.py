"""``streamfuse eval``: the video (CCDC) and stereo (dual-lens) protocols, metrics per case, tables, images, plot."""

from streamfuse.evaluation.case import Case
from streamfuse.evaluation.data import DEFAULT_DATA, data_dir
from streamfuse.evaluation.report import markdown_table, results_document, summarize, write_json
from streamfuse.evaluation.runner import RECORD_KEYS, EvalConfig, iter_cases, protocol_list, run_eval

__all__ = [
    "DEFAULT_DATA",
    "RECORD_KEYS",
    "Case",
    "EvalConfig",
    "data_dir",
    "iter_cases",
    "markdown_table",
    "protocol_list",
    "results_document",
    "run_eval",
    "summarize",
    "write_json",
]

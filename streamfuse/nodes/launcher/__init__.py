"""`streamfuse run`: the supervisor (processes) and the report (status line, summary)."""

from streamfuse.nodes.launcher.report import NodeStats, format_summary
from streamfuse.nodes.launcher.supervisor import Launcher, check_startable, run_pipeline, run_rig

__all__ = ["Launcher", "NodeStats", "check_startable", "format_summary", "run_pipeline", "run_rig"]

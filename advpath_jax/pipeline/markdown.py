"""Markdown helpers shared by the report's tables (``report.py``, ``quality.py``)."""

from __future__ import annotations


def md_cell(text: str) -> str:
    """``text`` safe inside a Markdown table cell: backslashes, pipes, underscores and stars escaped."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("_", "\\_").replace("*", "\\*")

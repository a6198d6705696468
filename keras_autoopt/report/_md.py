"""Markdown building blocks shared by ``report.md`` and ``compression.md``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def md_cell(value: Any) -> str:
    """Make ``value`` safe inside a Markdown table cell.

    Args:
        value: Any value; it is turned into text with ``str``.

    Returns:
        The text on one line with ``|`` escaped; a space if it is blank.

    """
    text = str(value).replace("\r", " ").replace("\n", " ").replace("|", "\\|")
    return text if text.strip() else " "


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]], align: str) -> list[str]:
    """Return the lines of a Markdown table.

    Args:
        header: The column titles.
        rows: The cells, one sequence per row; they go through `md_cell`.
        align: One ``l`` (left) or ``r`` (right) per column.

    Returns:
        The header line, the rule and one line per row.

    """
    rule = ["---:" if side == "r" else "---" for side in align]
    lines = ["| " + " | ".join(md_cell(text) for text in header) + " |"]
    lines.append("| " + " | ".join(rule) + " |")
    lines.extend("| " + " | ".join(md_cell(text) for text in row) + " |" for row in rows)
    return lines


def md_link(text: str, path: str) -> str:
    """Return a Markdown link to a relative ``path``, escaping what would break it.

    Args:
        text: The link text; brackets are escaped.
        path: The target; wrapped in ``<...>`` if it holds spaces or parentheses.

    Returns:
        For example ``"[float32](models/float32.tflite)"``.

    """
    text = text.replace("[", "\\[").replace("]", "\\]")
    target = f"<{path}>" if any(char in path for char in " ()") else path
    return f"[{text}]({target})"


def environment_section(environment: Mapping[str, Any]) -> list[str]:
    """Return the "Environment" section: one row per package and its version.

    Args:
        environment: Validated ``{name: version or None}``.

    Returns:
        The section's lines; a ``None`` version reads ``not installed``.

    """
    rows = [
        (name, version if version is not None else "not installed")
        for name, version in environment.items()
    ]
    return ["## Environment", "", *md_table(("package", "version"), rows, "ll")]

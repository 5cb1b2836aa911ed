"""A tool's descriptions from its function's docstring: the text before the sections, and one line per parameter
from a Google-style ``Args:`` section (or Sphinx ``:param NAME:`` fields).
"""

from __future__ import annotations

import inspect
import re

__all__ = ["parse_docstring"]

_SECTION = re.compile(
    r"^(Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments|Returns|Return|Yields|Raises|"
    r"Examples?|Notes?|Attributes|See Also|Warnings?|Todo)\s*:\s*$",
    re.IGNORECASE,
)
_ARG_SECTIONS = {"args", "arguments", "parameters", "params", "keyword args", "keyword arguments"}
_ARG_ENTRY = re.compile(r"^\*{0,2}([A-Za-z_]\w*)\s*(?:\([^)]*\))?\s*:(.*)$")
_SPHINX_PARAM = re.compile(r"^:param\s+(?:[^:]*\s)?([A-Za-z_]\w*)\s*:(.*)$")


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """Split a docstring into its description and per-parameter descriptions (Google-style ``Args:``).

    Args:
        doc: The docstring (Google-style ``Args:`` or Sphinx ``:param:``); None or empty gives ``("", {})``.
    """
    if not doc:
        return "", {}
    lines = inspect.cleandoc(doc).splitlines()
    description: list[str] = []
    params: dict[str, str] = {}
    section: str | None = None
    entry_indent: int | None = None
    current: str | None = None
    for line in lines:
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        header = _SECTION.match(stripped)
        if header and indent == 0:
            section, entry_indent, current = header.group(1).lower(), None, None
            continue
        if section is None:
            sphinx = _SPHINX_PARAM.match(stripped)
            if sphinx:
                current = sphinx.group(1)
                params[current] = sphinx.group(2).strip()
                section = ":param"
                continue
            description.append(line)
            continue
        if section == ":param":
            sphinx = _SPHINX_PARAM.match(stripped)
            if sphinx:
                current = sphinx.group(1)
                params[current] = sphinx.group(2).strip()
            elif stripped.startswith(":"):
                current = None
            elif current and stripped:
                params[current] = f"{params[current]} {stripped}".strip()
            continue
        if section not in _ARG_SECTIONS or not stripped:
            continue
        entry = _ARG_ENTRY.match(stripped)
        if entry and (entry_indent is None or indent <= entry_indent):
            entry_indent = indent
            current = entry.group(1)
            params[current] = entry.group(2).strip()
        elif current is not None:
            params[current] = f"{params[current]} {stripped}".strip()
    return "\n".join(description).strip(), params

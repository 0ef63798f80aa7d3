"""Markdown as a reader sees it, for tests that read a page's text."""

from __future__ import annotations

import re

#: a backslash before ASCII punctuation: CommonMark shows the character itself
_ESCAPED = re.compile(r"\\([!-/:-@\[-`{-~])")


def as_read(markdown: str) -> str:
    """`markdown` with its backslash escapes read as the characters they escape (text from a
    URL, the database or an error is shown literally: `ui.urlstate.literal` escapes every
    punctuation character)."""
    return _ESCAPED.sub(r"\1", markdown)

"""Text bound for a terminal: control characters shown as escapes, never obeyed.

Anyone who calls AWS picks their user agent, and anyone who can write to a bucket picks
its keys: an ESC or OSC sequence in such a field, printed raw, can clear the screen, write
the clipboard or fake coloured text. Everything printed for people goes through
``printable``; rich cells through ``cell``, which also keeps ``[red]`` from being read as
rich markup. JSON output needs neither: its encoder escapes control characters itself.
"""

from __future__ import annotations

import re

from rich.text import Text

__all__ = ["cell", "printable"]

# C0 controls (ESC starts CSI/OSC sequences, BEL ends OSC, CR and LF rewrite or fake lines),
# DEL, C1 controls (U+009B is a one-character CSI) and the bidirectional overrides and
# isolates that reorder what is shown.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(value: object, *, keep_newlines: bool = False) -> str:
    """``str(value)`` with every control character replaced by a visible ``\\xNN`` escape.

    ``keep_newlines`` leaves line feeds alone, for whole messages printed as they are.
    """
    text = str(value)
    if keep_newlines:
        return "\n".join(_UNSAFE.sub(_escape, line) for line in text.split("\n"))
    return _UNSAFE.sub(_escape, text)


def cell(value: object) -> Text:
    """A rich table cell or line of ``value``: printable, and never parsed as markup."""
    return Text("" if value is None else printable(value))

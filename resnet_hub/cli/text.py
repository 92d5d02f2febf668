"""Text from data (class names, file names, reasons) made safe to print in a terminal.

Class names come from folder names and weights files: a name holding ESC sequences, a carriage return or a
right-to-left override would repaint the user's terminal or disguise a table row. Every table and message
that shows such text passes it through :func:`plain`: control characters become visible escapes
(``\\x1b``, ``\\r``, ``\\u202e``) and rich markup is escaped, so what is printed is what the data holds.
"""

from __future__ import annotations

import re

from rich.markup import escape

# C0 and C1 controls, DEL, and the Unicode bidirectional / zero-width format characters that reorder or hide text.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _visible(match: re.Match[str]) -> str:
    char = match.group(0)
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: object, keep: str = "") -> str:
    """``text`` with control characters shown as escapes, except those in ``keep`` (error messages keep their
    line breaks); for output that is not rich markup (``typer.echo``)."""
    return _CONTROL.sub(lambda m: m.group(0) if m.group(0) in keep else _visible(m), str(text))


def plain(text: object) -> str:
    """``text`` with control characters shown as escapes and rich markup escaped (ready for ``Console.print``)."""
    return escape(_CONTROL.sub(_visible, str(text)))

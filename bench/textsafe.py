"""Text from files, shown to people: in the terminal and in Markdown, as inert text.

A results file, a framework's error message or a run id is data someone else may have
written. Printed raw, an ESC sequence in a `framework` column cleared the user's screen,
retitled the window and planted an OSC-8 link; a U+202E in a reason reversed the gate's
Markdown as GitHub shows it; NUL and backspace hid or overprinted text. Every place that
shows such text goes through here:

- `visible` writes every control character (C0 but newline and tab, DEL, C1), the bidi
  embedding/override/isolate marks and the line/paragraph separators as their escape
  (`\\x1b`, `\\u202e`), so they are seen and never obeyed;
- `markup` is `visible` then rich's markup escape, for text handed to rich (a `[/]` in a
  name is text, not a style);
- `markdown_cell` is `visible`, one line, capped, with every character Markdown or HTML
  gives a meaning written as an entity: it cannot close a table, a `<details>` or start a
  comment or a link.

A leaf module: it imports nothing of the project, and rich only when `markup` is called.
"""

from __future__ import annotations

import re
from typing import Any

# bidi: LRM, RLM, ALM, LRE/RLE/PDF/LRO/RLO, LRI/RLI/FSI/PDI; separators: U+2028/U+2029
_BIDI = "\u200e\u200f\u061c\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u2028\u2029"
_SHOWN_AS_ESCAPE = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(value: Any) -> str:
    """`value` as text whose every character is shown, none obeyed (see the module docstring)."""
    return _SHOWN_AS_ESCAPE.sub(_escape, str(value))


def markup(value: Any) -> str:
    """`visible` text for rich: its markup escaped too."""
    from rich.markup import escape  # here, not at the top: doctor's probe imports this module in an
    # interpreter that may lack rich (`--python FW=PATH`)

    return escape(visible(value))


MD_CELL_MAX = 200
# Characters that Markdown or HTML give a meaning (code, emphasis, links, tags, comments,
# headings, table cells), written as HTML entities: GitHub shows them as the plain character.
_MD_ENTITIES = {c: f"&#{ord(c)};" for c in "\\`*_[]<>!|~&"}
# Only what can change the page's structure (tags, comments, links, code, table cells):
# emphasis marks stay, for text also read in a terminal (doctor's `jax_plugin`, `peak_rss_bytes`).
_STRUCTURE_ENTITIES = {c: f"&#{ord(c)};" for c in "`[]<>|&"}


def markdown_cell(value: Any, limit: int = MD_CELL_MAX, emphasis: bool = True) -> str:
    """File-supplied text (a reason, a framework name, params, a path) as inert Markdown on
    one line: a crafted `reason` with newlines, `</details>` and `<!--` once closed the
    gate's table, added a fake PASS block and hid every other case. `emphasis=False` leaves
    `*`, `_`, `~`, `!` and backslashes as they are (they can bold or strike text, not hide it)."""
    text = " ".join(visible(value).split())  # newlines, tabs: one space
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    entities = _MD_ENTITIES if emphasis else _STRUCTURE_ENTITIES
    return "".join(entities.get(c, c) for c in text).replace("://", "&#58;//")  # no bare autolinks

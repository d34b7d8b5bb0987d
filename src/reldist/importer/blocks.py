"""The document model of an import: blocks of text with links held as tokens, and their Markdown.

Owns :class:`Block` (a paragraph, heading, list item, quote, table row or block of lines, with the
notes about guesses made on it), :class:`Links` (link targets kept out of the text as private-use
tokens, so that typography and shape rules never touch a URL), checking a link target
(:func:`safe_target`) and writing the blocks as the project's Markdown (:func:`to_markdown`), with
the line of each block so that every note can name ``file:line``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "BOLD",
    "END",
    "IMAGE",
    "ITALIC",
    "ITALIC_END",
    "NOTES",
    "Block",
    "Links",
    "safe_target",
    "to_markdown",
]

#: Strong emphasis around text, kept out of escaping like the link tokens.
BOLD, END = "\ue002", "\ue003"
#: Emphasis, the same way.
ITALIC, ITALIC_END = "\ue004", "\ue005"
#: The text of the heading above a document's footnotes (the words depend on the language).
NOTES = "\ue007footnotes"
#: A link whose text starts with this is an image (the text after it is the alt text).
IMAGE = "\ue006"
_MARKS = {BOLD: "**", END: "**", ITALIC: "*", ITALIC_END: "*"}

Kind = Literal["p", "h1", "h2", "h3", "li", "oli", "quote", "lines", "table", "image"]
_TOKEN = re.compile(r"\ue000(\d+)\ue001")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>«»\"]+[^\s<>«»\".,;:!?)]")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_SAFE_SCHEMES = ("http:", "https:", "mailto:", "tel:")


@dataclass(slots=True)
class Block:
    """One block of the imported document; ``text`` is inline Markdown source with link tokens."""

    kind: Kind
    text: str
    notes: list[str] = field(default_factory=list)
    gap: int = 1  # blank lines before it in a text export (a wide gap ends a group)
    rows: list[list[str]] = field(default_factory=list)  # a table's cells


class Links:
    """Link targets held out of the text: ``add`` returns a token that stands for the link."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []  # (text, target)

    def add(self, text: str, target: str) -> str:
        self.items.append((text, target))
        return f"\ue000{len(self.items) - 1}\ue001"

    def text_of(self, token_text: str) -> str:
        """The text with each token replaced by its link text (for matching and measuring)."""
        text = _TOKEN.sub(lambda m: self.items[int(m.group(1))][0], token_text)
        return re.sub("[\ue002-\ue006]", "", text)

    def bare_urls(self, text: str, notes: list[str]) -> str:
        """Web addresses written as text become links (``www.…`` as https, noted)."""

        def link(match: re.Match[str]) -> str:
            url = match.group()
            if url.startswith("www."):
                notes.append(f"made {url} a link to https://{url}")
                return self.add(url, "https://" + url)
            return self.add(url, url)

        parts = _TOKEN.split(text)
        out = []
        for index, part in enumerate(parts):
            out.append(_URL.sub(link, part) if index % 2 == 0 else f"\ue000{part}\ue001")
        return "".join(out)


def safe_target(target: str) -> tuple[str | None, str | None]:
    """(the target to link to or None, a note when it was changed or dropped).

    Web and mail targets are kept; a local path ending in an email address (Word's way of saving
    an address typed into a document from a temporary folder) becomes ``mailto:``; any other local
    path, ``javascript:`` and other schemes are dropped.
    """
    target = target.strip()
    lower = target.lower()
    if lower.startswith(_SAFE_SCHEMES):
        return target, None
    if lower.startswith("#") or not target:
        return None, f"dropped a link to a place in the Word document ({target or 'empty'})"
    if _SCHEME.match(target) and not re.match(r"^[A-Za-z]:[\\/]", target):
        return None, f"dropped a link with an unsafe or unknown target {target!r}"
    last = re.split(r"[\\/]", target.rstrip("/\\"))[-1]
    if _EMAIL.fullmatch(last):
        return (
            f"mailto:{last}",
            f"a link pointed into a local folder ({target}); made it mailto:{last}",
        )
    return None, f"dropped a link to a local file that journalists cannot open: {target}"


def escape(text: str) -> str:
    """Plain text as Markdown inline text (markup characters escaped)."""
    text = re.sub(r"([\\`*\[\]<>])", r"\\\1", text)
    return re.sub(r"(?<![\w\\])_|_(?!\w)", r"\\_", text)


def _line_start(text: str) -> str:
    """Escape what would make a paragraph's first characters a heading, list or quote."""
    return re.sub(r"^(\s*)([#>+-]|\d+[.)])(?=\s|$)", lambda m: m.group(1) + "\\" + m.group(2), text)


def render_inline(text: str, links: Links, *, raw: bool = False) -> str:
    """Inline Markdown: the text escaped (unless ``raw``: it is Markdown already) and the links."""
    out = []
    for index, part in enumerate(_TOKEN.split(text)):
        if index % 2 == 0:
            out.append(_marks(part if raw else escape(part)))
            continue
        label, target = links.items[int(part)]
        if label.startswith(IMAGE):
            out.append(f"![{escape(label[1:])}]({target})")
        elif label == target and not target.startswith("mailto:"):
            out.append(f"<{target}>")
        else:
            out.append(f"[{_marks(escape(label))}]({target})")
    return "".join(out)


def _marks(text: str) -> str:
    return re.sub("[\ue002-\ue005]", lambda m: _MARKS[m.group()], text)


def to_markdown(blocks: list[Block], links: Links, *, raw: bool = False) -> tuple[str, list[int]]:
    """The Markdown file and the line where each block starts."""
    lines: list[str] = []
    starts: list[int] = []
    previous: str | None = None
    for block in blocks:
        text = render_inline(block.text, links, raw=raw)
        listy = block.kind in ("li", "oli")
        if lines and not (listy and previous == block.kind):
            lines.append("")
        starts.append(len(lines) + 1)
        if block.kind in ("h1", "h2", "h3"):
            lines.append("#" * int(block.kind[1]) + " " + text)
        elif block.kind == "li":
            lines.append("- " + text)
        elif block.kind == "oli":
            lines.append("1. " + text)
        elif block.kind == "quote":
            lines.append("> " + text)
        elif block.kind == "lines":
            parts = text.split("\n")
            lines.extend(part + "\\" for part in parts[:-1])
            lines.append(parts[-1])
        elif block.kind == "table":
            cells = [
                [render_inline(c, links, raw=raw).replace("|", "\\|") for c in row] for row in block.rows
            ]
            width = max(len(row) for row in cells)
            cells = [row + [""] * (width - len(row)) for row in cells]
            lines.append("| " + " | ".join(cells[0]) + " |")
            lines.append("|" + "---|" * width)
            lines.extend("| " + " | ".join(row) + " |" for row in cells[1:])
        else:
            lines.append(_line_start(text) if not raw else text)
        previous = block.kind
    return "\n".join(lines) + "\n", starts

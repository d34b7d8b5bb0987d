"""HTML (a saved web page, or the HTML mammoth makes of a .docx) as import blocks.

Owns a small walk over the HTML (``html.parser``): paragraphs, headings, list items, quotes,
tables, line breaks, bold and italic, links (checked with :func:`~.blocks.safe_target`, unsafe
ones dropped with a note) and images with their alt text. Footnote references and back-links
that mammoth adds are kept as text, and its footnotes become a numbered list under a heading. Scripts, styles and everything else are left out.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from .blocks import BOLD, END, IMAGE, ITALIC, ITALIC_END, NOTES, Block, Links, safe_target

__all__ = ["html_blocks"]

_BLOCKS = {"p": "p", "h1": "h1", "h2": "h2", "h3": "h3", "h4": "h3", "h5": "h3", "h6": "h3", "div": "p"}
_SKIP = {"script", "style", "head", "title", "noscript", "template"}


class _Walk(HTMLParser):
    def __init__(self, links: Links) -> None:
        super().__init__(convert_charrefs=True)
        self.links = links
        self.blocks: list[Block] = []
        self.buffer: list[str] = []
        self.kind = "p"
        self.notes: list[str] = []
        self.lists: list[str] = []
        self.quote = 0
        self.skip = 0
        self.href: str | None = None
        self.label: list[str] = []
        self.table: list[list[str]] | None = None
        self.cell: list[str] | None = None
        self.footnotes = False

    # -- text ----------------------------------------------------------------------------------

    def _out(self) -> list[str]:
        if self.href is not None:
            return self.label
        if self.cell is not None:
            return self.cell
        return self.buffer

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        self._out().append(re.sub(r"\s+", " ", data))

    def flush(self) -> None:
        text = "".join(self.buffer).strip()
        lines = [" ".join(line.split()) for line in text.split("\n")]  # spaces around marks too
        text = "\n".join(line for line in lines if line)
        if text:
            kind = self.kind
            if self.lists and kind == "p":
                kind = "oli" if self.lists[-1] == "ol" else "li"
            elif self.quote and kind == "p":
                kind = "quote"
            if "\n" in text and kind == "p":
                kind = "lines"
            self.blocks.append(Block(kind, text, self.notes))  # type: ignore[arg-type]
        self.buffer, self.notes, self.kind = [], [], "p"

    # -- tags ----------------------------------------------------------------------------------

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag in _SKIP:
            self.skip += 1
        elif tag in _BLOCKS:
            self.flush()
            self.kind = _BLOCKS[tag]
        elif tag in ("ul", "ol"):
            self.flush()
            self.lists.append(tag)
        elif tag == "li":
            self.flush()
            if values.get("id", "").startswith(("footnote-", "endnote-")) and not self.footnotes:
                self.footnotes = True  # mammoth's footnotes: a list at the end, under a heading
                self.blocks.append(Block("h2", NOTES, ["the document's footnotes set as notes at the end"]))
        elif tag == "blockquote":
            self.flush()
            self.quote += 1
        elif tag == "table":
            self.flush()
            self.table = []
        elif tag == "tr" and self.table is not None:
            self.table.append([])
        elif tag in ("td", "th") and self.table is not None:
            self.cell = []
        elif tag == "br":
            self._out().append("\n")
        elif tag in ("strong", "b"):
            self._out().append(BOLD)
        elif tag in ("em", "i"):
            self._out().append(ITALIC)
        elif tag == "a" and self.href is None:
            self.href = values.get("href", "")
            self.label = []
        elif tag == "img":
            self._image(values.get("src", ""), values.get("alt", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in _BLOCKS or tag == "li":
            self.flush()
        elif tag in ("ul", "ol"):
            self.flush()
            if self.lists:
                self.lists.pop()
        elif tag == "blockquote":
            self.flush()
            self.quote = max(0, self.quote - 1)
        elif tag in ("td", "th") and self.table is not None and self.cell is not None:
            if self.table:
                self.table[-1].append(" ".join("".join(self.cell).split()))
            self.cell = None
        elif tag == "table" and self.table is not None:
            rows = [row for row in self.table if any(cell for cell in row)]
            if rows:
                self.blocks.append(Block("table", "", rows=rows))
            self.table = None
        elif tag in ("strong", "b"):
            self._out().append(END)
        elif tag in ("em", "i"):
            self._out().append(ITALIC_END)
        elif tag == "a" and self.href is not None:
            self._link()

    def _link(self) -> None:
        href, label = self.href or "", " ".join("".join(self.label).split())
        self.href, self.label = None, []
        if href.startswith("#footnote") or href.startswith("#endnote"):
            self._out().append("" if label == "↑" else label)
            return
        if '"' in href:  # mammoth keeps a HYPERLINK field's switches: 'url" \\o "tip'
            href = href.split('"', 1)[0].strip()
        target, note = safe_target(href)
        if note:
            self.notes.append(note)
        self._out().append(self.links.add(label or target, target) if target else label)

    def _image(self, src: str, alt: str) -> None:
        target = src if src.startswith(("files/", "https:", "http:")) else None
        if target is None:
            self.notes.append(f"dropped an image whose source is not a file of the release: {src[:60]!r}")
            return
        if not alt.strip():
            self.notes.append(f"the image {src} has no alt text: add it (what it shows)")
        self._out().append(self.links.add(IMAGE + alt.strip(), target))


def html_blocks(html: str, links: Links) -> list[Block]:
    """The blocks of an HTML document."""
    walk = _Walk(links)
    walk.feed(html)
    walk.close()
    walk.flush()
    return walk.blocks

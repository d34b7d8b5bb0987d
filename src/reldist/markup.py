"""Markdown (CommonMark) to the two bodies of a release: HTML and readable plain text.

The HTML comes from markdown-it-py as it is. The plain text is rendered from the same syntax
tree, so it reads like a letter rather than stripped tags: paragraphs wrapped at 72 columns,
headings underlined, links as ``text <url>``, quotes behind ``> ``, lists with ``-`` or numbers.
Both get no-break spaces where a line must not break (``typography``). Nothing here reads files.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass

from markdown_it import MarkdownIt
from markdown_it.token import Token
from markdown_it.tree import SyntaxTreeNode

from .typography import nowrap_phones, tie

WIDTH = 72

_md = MarkdownIt("commonmark", {"html": False}).enable("table").enable("strikethrough")


@dataclass(frozen=True, slots=True)
class Body:
    """A converted Markdown document. ``title`` is the first level-1 heading, taken out of both bodies."""

    title: str
    html: str
    text: str
    lead_html: str  # the news itself: everything before the first level-2 heading (notes, contacts)
    lead_text: str
    images: tuple[tuple[str, str], ...]  # (src, alt) of every image
    links: tuple[str, ...]  # every link target
    contacts_html: str = ""  # the "## Press contacts" section, heading included ("" if none)
    contacts_text: str = ""


def convert(source: str) -> Body:
    """Convert one Markdown document."""
    tokens = _md.parse(source)
    for token in tokens:  # no-break spaces in numbers, phones, initials (both bodies get them)
        for child in token.children or ():
            if child.type == "text":
                child.content = tie(child.content)
    title = ""
    if len(tokens) >= 3 and tokens[0].type == "heading_open" and tokens[0].tag == "h1":
        title = _plain_inline(SyntaxTreeNode(tokens[:3]).children[0].children[0])
        tokens = tokens[3:]
    html, text = _render(tokens)
    cut = next((i for i, t in enumerate(tokens) if t.type == "heading_open" and t.tag == "h2"), len(tokens))
    lead_html, lead_text = _render(tokens[:cut]) if cut < len(tokens) else (html, text)
    contacts_html, contacts_text = _render(_contacts(tokens)) if _contacts(tokens) else ("", "")
    images: list[tuple[str, str]] = []
    links: list[str] = []
    for token in tokens:
        for inline in token.children or ():
            if inline.type == "image":
                images.append((str(inline.attrs.get("src", "")), inline.content))
            elif inline.type == "link_open":
                links.append(str(inline.attrs.get("href", "")))
    return Body(
        title=title,
        html=html,
        text=text,
        lead_html=lead_html,
        lead_text=lead_text,
        images=tuple(images),
        links=tuple(links),
        contacts_html=contacts_html,
        contacts_text=contacts_text,
    )


_CONTACTS = re.compile(r"контакт|contact|байланыс", re.IGNORECASE)


def _contacts(tokens: list[Token]) -> list[Token]:
    """The tokens of the level-2 section headed «Контакты…»/"Press contacts"/«…байланыс», heading included."""
    starts = [i for i, t in enumerate(tokens) if t.type == "heading_open" and t.tag == "h2"]
    for number, start in enumerate(starts):
        if _CONTACTS.search(tokens[start + 1].content):
            end = starts[number + 1] if number + 1 < len(starts) else len(tokens)
            return tokens[start:end]
    return []


def _render(tokens: list[Token]) -> tuple[str, str]:
    """(HTML, plain text) of a run of block tokens."""
    html = nowrap_phones(_md.renderer.render(tokens, _md.options, {}))
    text = "\n\n".join(block for child in SyntaxTreeNode(tokens).children if (block := _block(child, WIDTH)))
    return html, text + "\n"


def _block(node: SyntaxTreeNode, width: int) -> str:
    kind = node.type
    if kind == "paragraph":
        return _wrap(_inline(node.children[0]) if node.children else "", width)
    if kind == "heading":
        text = _inline(node.children[0]) if node.children else ""
        if node.tag == "h1":
            return f"{text}\n{'=' * min(len(text), width)}"
        if node.tag == "h2":
            return f"{text}\n{'-' * min(len(text), width)}"
        return text.upper() if node.tag == "h3" else text
    if kind == "blockquote":
        inner = "\n\n".join(b for c in node.children if (b := _block(c, width - 2)))
        return "\n".join(f"> {line}" if line else ">" for line in inner.splitlines())
    if kind in ("bullet_list", "ordered_list"):
        start = int(str(node.attrs.get("start", 1))) if kind == "ordered_list" else 1
        items = []
        for number, item in enumerate(node.children, start):
            marker = f"{number}. " if kind == "ordered_list" else "- "
            inner = "\n\n".join(b for c in item.children if (b := _block(c, width - len(marker))))
            items.append(textwrap.indent(inner, " " * len(marker))[len(marker) :].join([marker, ""]))
        return "\n".join(items)
    if kind in ("fence", "code_block"):
        return textwrap.indent(node.content.rstrip("\n"), "    ")
    if kind == "hr":
        return "-" * 20
    if kind == "table":
        rows = []
        for section in node.children:
            for row in section.children:
                rows.append(
                    " | ".join(_inline(cell.children[0]) if cell.children else "" for cell in row.children)
                )
        return "\n".join(rows)
    if kind == "html_block":
        return ""
    return "\n\n".join(b for c in node.children if (b := _block(c, width)))


def _wrap(text: str, width: int) -> str:
    # Hard line breaks (two spaces or a backslash at a line end) are kept as line breaks.
    return "\n".join(
        textwrap.fill(line, width=width, break_long_words=False, break_on_hyphens=False) or ""
        for line in text.split("\n")
    )


def _inline(node: SyntaxTreeNode) -> str:
    parts: list[str] = []
    for child in node.children:
        kind = child.type
        if kind == "text":
            parts.append(child.content)
        elif kind == "softbreak":
            parts.append(" ")
        elif kind == "hardbreak":
            parts.append("\n")
        elif kind == "code_inline":
            parts.append(child.content)
        elif kind == "image":
            parts.append(f"[{child.content}]" if child.content else "")
        elif kind == "link":
            label = _inline(child)
            href = str(child.attrs.get("href", ""))
            target = href.removeprefix("mailto:")
            parts.append(label if target in (label, "") else f"{label} <{target}>")
        elif kind in ("html_inline",):
            continue
        else:  # em, strong, s: their text only
            parts.append(_inline(child))
    return "".join(parts)


def _plain_inline(node: SyntaxTreeNode) -> str:
    return " ".join(_inline(node).split())

"""What a release's templates and HTML refer to, for the deliverability check.

Owns reading references out of text: the ``recipient.X`` variables a Jinja2 template uses (from its
syntax tree, with line numbers), the templates one extends, includes or imports, the images and
links of an HTML document, what kind of target a link is (``http://``, a local file, fine), and
the line of a file where some text first appears. Pure functions over strings and template files;
it judges nothing (``deliverability`` turns these into findings).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Literal

import jinja2
from jinja2 import meta, nodes

__all__ = ["HtmlRefs", "line_of", "recipient_variables", "referenced_templates", "target_kind"]

_DICT_METHODS = frozenset({"get", "items", "keys", "values"})
_WINDOWS_PATH = re.compile(r"^[A-Za-z]:[\\/]")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


class HtmlRefs(HTMLParser):
    """Images (src, alt or None when the attribute is missing) and link targets of an HTML document."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.images: list[tuple[str, str | None]] = []
        self.links: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "img":
            self.images.append((values.get("src") or "", values.get("alt")))
        elif tag == "a" and values.get("href"):
            self.links.append(values["href"] or "")


def target_kind(target: str) -> Literal["http", "local", "ok"]:
    """``http`` for an unencrypted web address, ``local`` for a file on someone's disk, else ``ok``.

    Local: ``file:`` URLs, Windows paths and scheme-less relative paths (``files/memo.pdf``); an
    in-page anchor (``#lang-en``) and a scheme-relative ``//host/...`` are not.
    """
    if target.lower().startswith("http://"):
        return "http"
    if target.lower().startswith("file:") or _WINDOWS_PATH.match(target):
        return "local"
    if _SCHEME.match(target) is None and target.strip() and not target.startswith(("#", "//")):
        return "local"
    return "ok"


def recipient_variables(env: jinja2.Environment, name: str) -> list[tuple[str, int]]:
    """``recipient.X``, ``recipient['X']`` and ``recipient.get('X')`` in one template, with lines.

    A template that does not exist or does not parse gives nothing: the renderer reports those.
    """
    tree = _parse(env, name)
    if tree is None:
        return []
    found: set[tuple[str, int]] = set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Call)):
        if isinstance(node, nodes.Call):
            target = node.node
            if (
                isinstance(target, nodes.Getattr)
                and _is_recipient(target.node)
                and target.attr == "get"
                and node.args
                and isinstance(node.args[0], nodes.Const)
                and isinstance(node.args[0].value, str)
            ):
                found.add((node.args[0].value, node.lineno))
        elif isinstance(node, nodes.Getattr):
            if _is_recipient(node.node) and node.attr not in _DICT_METHODS:
                found.add((node.attr, node.lineno))
        elif (
            isinstance(node, nodes.Getitem)
            and _is_recipient(node.node)
            and isinstance(node.arg, nodes.Const)
            and isinstance(node.arg.value, str)
        ):
            found.add((node.arg.value, node.lineno))
    return sorted(found, key=lambda item: (item[1], item[0]))


def referenced_templates(env: jinja2.Environment, name: str, seen: set[str] | None = None) -> list[str]:
    """The templates ``name`` extends, includes or imports, recursively, each once."""
    seen = seen if seen is not None else {name}
    tree = _parse(env, name)
    if tree is None:
        return []
    out: list[str] = []
    for child in meta.find_referenced_templates(tree):
        if child is not None and child not in seen:
            seen.add(child)
            out += [child, *referenced_templates(env, child, seen)]
    return out


def line_of(path: Path, needle: str) -> int:
    """The first line of ``path`` containing ``needle`` (from 1), or 0."""
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, 1):
                if needle in line:
                    return number
    except OSError:
        pass
    return 0


def _parse(env: jinja2.Environment, name: str) -> nodes.Template | None:
    try:
        source = env.loader.get_source(env, name)[0] if env.loader else ""
        return env.parse(source, name)
    except (jinja2.TemplateNotFound, jinja2.TemplateSyntaxError):
        return None


def _is_recipient(node: nodes.Node) -> bool:
    return isinstance(node, nodes.Name) and node.name == "recipient"

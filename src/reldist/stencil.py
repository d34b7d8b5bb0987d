"""Stencils: a template rendered once per variant, with marks where each recipient's data goes.

Rendering a release through Jinja and inlining its CSS costs ~0.5 ms a recipient, nearly all of
it the same for every recipient of a template and language order: only the greeting, the
recipient's fields and the unsubscribe links differ. A :class:`Stencil` is the finished HTML
(CSS inlined) and text of one *variant* — template, languages, and which of the recipient values
the template uses are empty — rendered with a private-use mark (U+E000 n U+E001) in place of
every non-empty one, and cut at the marks. Filling it in is a string join. The chunks are also
kept as canonical MIME bytes (CRLF), so that ``message.Base64Blocks`` encodes each large one
once for all recipients.

A stencil is used only when that gives exactly what the full render would:

- :func:`stencil_safe` reads the template (and the ones it extends or includes) and allows
  recipient data only as plain output (``{{ recipient.name }}``, ``{{ greetings[0] }}``,
  ``{{ unsubscribe_url }}``) and as a truth test (``{% if recipient.name %}``); anything else —
  a filter, a comparison, a loop over it, a macro — sends that template down the full path.
  Empty values are rendered as they are and are part of the variant, so truth tests match;
  values the template does not use make no variants.
- A value is filled in only when it is *plain*: no control or line-break characters, no
  private-use characters, no white space at either end (the text part strips line ends, and the
  HTML parser turns CR into LF). Others take the full path.
- In the HTML the value is escaped as the CSS inliner's serialiser writes it: ``& < >`` and
  no-break spaces in text, ``& "`` and no-break spaces inside a tag.
- When a stencil is made, it is filled with probe values full of ``& < > " '`` and compared with
  a full render of the same probe; if they differ (a value inside ``<style>``, say), that variant
  takes the full path.

The tests prove stencil and full render equal for arbitrary values (hypothesis), and that
``Renderer``'s context differs between recipients only in :data:`VARYING`."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jinja2
from jinja2 import meta, nodes

#: Context keys whose values differ from one recipient to the next.
VARYING = frozenset({"recipient", "greetings", "unsubscribe_url", "unsubscribe_mailto"})
_SCALARS = ("unsubscribe_url", "unsubscribe_mailto")
_MARK = re.compile("\ue000([0-9]+)\ue001")
# Control and line-break characters, private-use ones (the marks), white space at either end, and
# dashes alone (a text line "-- " is the signature separator, which the text clean-up keeps).
_UNPLAIN = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ue000-\uf8ff]|^\s|\s$|^-+$")

#: (html with CSS inlined, normalised text) of a context; raises what the template raises.
RenderFull = Callable[[str, dict[str, Any]], tuple[str, str]]
ValuePath = tuple[str | int, ...]


# -- which templates may be stencilled -------------------------------------------------------


def stencil_safe(env: jinja2.Environment, filename: str) -> frozenset[ValuePath] | None:
    """The recipient values ``filename`` and every template it pulls in use (``("recipient",
    "name")``, ``("greetings", 0)``, ``("unsubscribe_url",)``), when they use them only as plain
    output or truth tests (see the module's doc); None when a stencil cannot follow them."""
    seen: set[str] = set()
    used: set[ValuePath] = set()
    escaped = _autoescaped(env, filename)
    todo = [filename]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if _autoescaped(env, name) != escaped:  # an .html.j2 including a plain .j2 part, say
            return None
        try:
            assert env.loader is not None
            source = env.loader.get_source(env, name)[0]
            tree = env.parse(source, name)
        except jinja2.TemplateError:
            return None  # the full path reports it properly
        for ref in meta.find_referenced_templates(tree):
            if ref is None:  # {% include some_variable %}: cannot follow
                return None
            todo.append(ref)
        if not _safe(tree):
            return None
        if any(_direct(node) and hasattr(dict, node.attr) for node in tree.find_all(nodes.Getattr)):
            return None  # recipient.items is the dict's method to Jinja, not a column named "items"
        used.update(
            _path(node) for node in tree.find_all((nodes.Name, nodes.Getattr, nodes.Getitem)) if _direct(node)
        )
    return frozenset(used)


def _autoescaped(env: jinja2.Environment, name: str) -> bool:
    return bool(env.autoescape(name) if callable(env.autoescape) else env.autoescape)


def _path(expr: nodes.Node) -> ValuePath:
    if isinstance(expr, nodes.Name):
        return (expr.name,)
    if isinstance(expr, nodes.Getattr):
        return ("recipient", expr.attr)
    assert isinstance(expr, nodes.Getitem) and isinstance(expr.node, nodes.Name)
    assert isinstance(expr.arg, nodes.Const)
    return (expr.node.name, expr.arg.value)


def _direct(expr: nodes.Node) -> bool:
    """``recipient.x``, ``recipient["x"]``, ``greetings[0]``, ``unsubscribe_url``: one value."""
    if isinstance(expr, nodes.Name):
        return expr.name in _SCALARS and expr.ctx == "load"
    if isinstance(expr, nodes.Getattr):
        return isinstance(expr.node, nodes.Name) and expr.node.name == "recipient"
    if isinstance(expr, nodes.Getitem) and isinstance(expr.node, nodes.Name):
        arg = expr.arg
        if expr.node.name == "recipient":
            return isinstance(arg, nodes.Const) and isinstance(arg.value, str)
        if expr.node.name == "greetings":
            return isinstance(arg, nodes.Const) and type(arg.value) is int
    return False


#: Names through which a block's output (which may hold recipient data) reaches an expression.
_BLOCK_CALLS = frozenset({"self", "super", "caller"})


def _block_output(expr: nodes.Node) -> bool:
    """``super()``, ``caller()`` or ``self.name()`` written out as it is."""
    if not isinstance(expr, nodes.Call) or expr.args or expr.kwargs or expr.dyn_args or expr.dyn_kwargs:
        return False
    target = expr.node
    if isinstance(target, nodes.Name):
        return target.name in ("super", "caller")
    return (
        isinstance(target, nodes.Getattr)
        and isinstance(target.node, nodes.Name)
        and target.node.name == "self"
    )


def _mentions(node: nodes.Node) -> bool:
    """Recipient data, a block's output or another template's output anywhere inside."""
    if any(name.name in VARYING | _BLOCK_CALLS for name in node.find_all(nodes.Name)):
        return True
    return any(True for _ in node.find_all((nodes.Block, nodes.Include)))


def _truth(test: nodes.Node) -> bool:
    """A test whose result depends on recipient data only through emptiness or presence."""
    if _direct(test):
        return True
    if isinstance(test, nodes.Not):
        return _truth(test.node)
    if isinstance(test, (nodes.And, nodes.Or)):
        return _truth(test.left) and _truth(test.right)
    if isinstance(test, nodes.Test) and test.name in ("defined", "undefined", "none"):
        return _direct(test.node) and not test.args and not test.kwargs
    return _safe(test)


def _safe(node: nodes.Node) -> bool:
    if isinstance(node, nodes.Output):
        return all(_direct(child) or _block_output(child) or _safe(child) for child in node.nodes)
    if isinstance(node, nodes.If):
        branches: list[nodes.Node] = [*node.body, *node.elif_, *node.else_]
        return _truth(node.test) and all(_safe(child) for child in branches)
    if isinstance(node, (nodes.Macro, nodes.CallBlock, nodes.FilterBlock, nodes.AssignBlock)):
        return not _mentions(node)  # its output may be transformed before it is written
    if isinstance(node, (nodes.EvalContextModifier, nodes.ScopedEvalContextModifier)):
        return not _mentions(node)  # {% autoescape %}: escaping differs inside
    if isinstance(node, nodes.Name) and node.name in VARYING | _BLOCK_CALLS:
        return False  # recipient data, or a block's output, in an expression
    return all(_safe(child) for child in node.iter_child_nodes())


# -- stencils ---------------------------------------------------------------------------------


_MISSING = object()


def _value(context: dict[str, Any], path: ValuePath) -> Any:
    """The value at ``path``; _MISSING where the template would stop (StrictUndefined)."""
    if len(path) == 1:
        return context.get(str(path[0]), _MISSING)
    try:
        return context[str(path[0])][path[1]]
    except (KeyError, IndexError, TypeError):
        return _MISSING


def _with_values(context: dict[str, Any], paths: list[ValuePath], values: list[str]) -> dict[str, Any]:
    copy = dict(context)
    copy["recipient"] = dict(context["recipient"])
    copy["greetings"] = list(context["greetings"])
    for path, value in zip(paths, values, strict=True):
        if len(path) == 1:
            copy[str(path[0])] = value
        else:
            copy[str(path[0])][path[1]] = value
    return copy


def _escape_text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\xa0", "&nbsp;")


def _escape_attribute(value: str) -> str:
    return value.replace("&", "&amp;").replace('"', "&quot;").replace("\xa0", "&nbsp;")


def canonical_chunks(chunks: Sequence[str]) -> tuple[bytes, ...]:
    """A body's chunks in canonical MIME form, as ``message`` makes a whole body: UTF-8, CRLF
    line ends, one final CRLF. The values that go between them hold no line breaks (they are
    plain), so each chunk converts on its own and only the last one's end is trimmed."""
    out = [chunk.encode("utf-8").replace(b"\r\n", b"\n") for chunk in chunks]
    out[-1] = out[-1].rstrip(b"\n") + b"\n"
    return tuple(chunk.replace(b"\n", b"\r\n") for chunk in out)


@dataclass(frozen=True, slots=True)
class Filled:
    """A recipient's HTML and text, as strings and as canonical MIME bodies in pieces: chunk,
    value, chunk, …, chunk, the chunks (even places) shared by every recipient of the stencil."""

    html: str
    text: str
    html_body: tuple[bytes, ...]
    text_body: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Stencil:
    """One variant's HTML and text cut at the marks: chunk, slot, chunk, slot, …, chunk."""

    html: tuple[str, ...]
    html_slots: tuple[tuple[int, bool], ...]  # (value index, inside a tag)
    text: tuple[str, ...]
    text_slots: tuple[int, ...]
    html_bytes: tuple[bytes, ...]  # the chunks in canonical MIME form (canonical_chunks)
    text_bytes: tuple[bytes, ...]

    @classmethod
    def cut(cls, html: str, text: str) -> Stencil:
        html_chunks, html_slots, start = [], [], 0
        for match in _MARK.finditer(html):
            at = match.start()
            html_chunks.append(html[start:at])
            html_slots.append((int(match.group(1)), html.rfind("<", 0, at) > html.rfind(">", 0, at)))
            start = match.end()
        html_chunks.append(html[start:])
        pieces = _MARK.split(text)  # text, index, text, index, …, text
        text_chunks = pieces[0::2]
        return cls(
            html=tuple(html_chunks),
            html_slots=tuple(html_slots),
            text=tuple(text_chunks),
            text_slots=tuple(int(n) for n in pieces[1::2]),
            html_bytes=canonical_chunks(html_chunks),
            text_bytes=canonical_chunks(text_chunks),
        )

    def fill(self, values: list[str]) -> Filled:
        html = [self.html[0]]
        html_body = [self.html_bytes[0]]
        for (index, in_tag), chunk, data in zip(
            self.html_slots, self.html[1:], self.html_bytes[1:], strict=True
        ):
            value = values[index]
            value = _escape_attribute(value) if in_tag else _escape_text(value)
            html += (value, chunk)
            html_body += (value.encode("utf-8"), data)
        text = [self.text[0]]
        text_body = [self.text_bytes[0]]
        for index, chunk, data in zip(self.text_slots, self.text[1:], self.text_bytes[1:], strict=True):
            value = values[index]
            text += (value, chunk)
            text_body += (value.encode("utf-8"), data)
        return Filled("".join(html), "".join(text), tuple(html_body), tuple(text_body))


class Stencils:
    """The stencils of one renderer, made on first use of each variant. ``full`` renders a
    context the slow way; ``styles`` gives the CSS its HTML template wrote (before inlining)."""

    #: At most this many variants get a stencil (~170 KB each for the example release, with the
    #: message builder's base64 blocks: ~11 MB at most); the rest are rendered in full. A variant
    #: is template × language order × which of the values the template uses are empty, so a
    #: template testing many optional columns can have many.
    limit = 64

    def __init__(self, full: RenderFull, styles: Callable[[str, dict[str, Any]], str]) -> None:
        self._full = full
        self._styles = styles
        self._made: dict[tuple[object, ...], Stencil | None] = {}

    def __len__(self) -> int:
        return sum(1 for s in self._made.values() if s is not None)

    def fill(
        self, template: str, languages: tuple[str, ...], context: dict[str, Any], used: tuple[ValuePath, ...]
    ) -> Filled | None:
        """``context`` rendered from its variant's stencil; None where the full render must be
        used (a value that is not plain, a variant that does not stencil). ``used`` are the
        recipient values the template uses (:func:`stencil_safe`): only they make variants."""
        shape: list[object] = [template, languages]
        paths: list[ValuePath] = []
        values: list[str] = []
        for path in used:
            value = _value(context, path)
            if isinstance(value, str) and value:
                if _UNPLAIN.search(value):
                    return None
                paths.append(path)
                values.append(value)
                shape.append(path)
            elif value is None or value == "":
                shape.append((path, value))
            else:
                return None
        key = tuple(shape)
        try:
            stencil = self._made[key]
        except KeyError:
            if len(self._made) >= self.limit:
                return None  # memory stays bounded however many empty/filled patterns a list has
            stencil = self._made[key] = self._make(template, context, paths)
        return None if stencil is None else stencil.fill(values)

    def _make(self, template: str, context: dict[str, Any], paths: list[ValuePath]) -> Stencil | None:
        marks = [f"\ue000{index}\ue001" for index in range(len(paths))]
        # Probes hold what changes parsing or escaping: & < > " ' = a space, a no-break space.
        probe = [f"P{index} &<>\"'=\xa0ж" for index in range(len(paths))]
        try:
            marked = _with_values(context, paths, marks)
            stencil = Stencil.cut(*self._full(template, marked))
            expected = self._full(template, _with_values(context, paths, probe))
            styles = self._styles(template, marked)
        except (jinja2.TemplateError, LookupError, TypeError, ValueError, ArithmeticError):
            # A template may do with a mark or a probe what it cannot do with them (a filter
            # that wants a number, an index into the value, css-inline refusing the result):
            # then this variant renders in full for each recipient, which raises the real error
            # if there is one. Anything else is a bug and must not be hidden here.
            return None
        if any("\ue000" in part for part in expected):
            return None  # the template or release itself holds the private-use mark character
        if not _attributes_unstyled(stencil, styles):
            return None
        filled = stencil.fill(probe)
        return stencil if (filled.html, filled.text) == expected else None


#: Attributes CSS selects on by value (.class, #id, :lang(), :dir()), or whose value is CSS.
_STYLED_ATTRIBUTES = frozenset({"class", "id", "style", "lang", "xml:lang", "dir"})
_ATTRIBUTE_START = re.compile(r"""([^\s"'=<>/`]+)\s*=\s*"[^"]*$""")


def _attributes_unstyled(stencil: Stencil, styles: str) -> bool:
    """Whether no recipient value sits where the CSS inliner would match it with a selector:
    the inliner saw the marks, not the values, so ``.vip`` or ``a[href^="mailto"]`` would
    have matched differently. A value in an unquoted attribute is refused too."""
    attribute_selectors = "[" in styles
    html = "".join(stencil.html[: len(stencil.html_slots)])  # up to the last slot
    offset = 0
    for chunk, (_, in_tag) in zip(stencil.html, stencil.html_slots, strict=False):
        offset += len(chunk)
        if not in_tag:
            continue
        start = html.rfind("<", 0, offset)
        match = _ATTRIBUTE_START.search(html, start, offset)
        if match is None or attribute_selectors or match.group(1).lower() in _STYLED_ATTRIBUTES:
            return False
    return True

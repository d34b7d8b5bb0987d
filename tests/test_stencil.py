"""Stencils (render once per variant, fill in recipient values) give exactly the full render:
for the example's templates and contacts, for arbitrary values (hypothesis), and for templates
that use recipient data in ways a stencil cannot follow (those take the full path)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import jinja2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import RELEASE_ID, contact, make_workspace
from reldist.contacts import Contact, read_contacts
from reldist.message import _canonical
from reldist.release import load_release
from reldist.render import Renderer
from reldist.stencil import _UNPLAIN, VARYING, _value, stencil_safe
from reldist.workspace import open_workspace

DATE = dt.datetime(2026, 11, 28, 5, 0, tzinfo=dt.UTC)

# Recipient data in text, in attributes, in truth tests and in a link, as a press office might.
CUSTOM_HTML = """{% extends "base.html.j2" %}
{% block body %}
<tr><td class="content" lang="{{ first.lang }}" title="{{ recipient.outlet }}">
<p>{{ greetings[0] }}</p>
{% if recipient.outlet %}<p class="label">{{ recipient.outlet }} &middot; {{ recipient['beat'] }}</p>{% else %}<p>no outlet</p>{% endif %}
{% if not recipient.region %}<p>somewhere</p>{% endif %}
<p><a href="mailto:{{ recipient.email }}?subject={{ recipient.name }}">{{ recipient.name }}</a></p>
{{ first.html }}
{% if others %}<p>{{ greetings[1] }}</p>{% endif %}
</td></tr>
{% endblock %}
"""
CUSTOM_TEXT = """{{ greetings[0] }}
{% if recipient.outlet %}For {{ recipient.outlet }} ({{ recipient.beat }}){% endif %}

{{ first.text }}
{{ recipient.name }} <{{ recipient.email }}>  {{ unsubscribe_url }}
"""


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_workspace(tmp_path_factory.mktemp("ws") / "office")
    (root / "templates" / "custom.html.j2").write_text(CUSTOM_HTML, encoding="utf-8")
    (root / "templates" / "custom.txt.j2").write_text(CUSTOM_TEXT, encoding="utf-8")
    toml = root / "reldist.toml"
    toml.write_text(
        toml.read_text(encoding="utf-8").replace("# url = ", "url = ", 1),
        encoding="utf-8",
    )
    return root


def renderers(root: Path) -> tuple[Renderer, Renderer]:
    ws = open_workspace(start=root)
    release = load_release(root / "releases" / RELEASE_ID, workspace=root)
    return Renderer(ws.config, release, now=DATE), Renderer(ws.config, release, now=DATE, stencils=False)


def same(fast: Renderer, full: Renderer, who: Contact, template: str | None = None) -> None:
    a, b = fast.render(who, template=template), full.render(who, template=template)
    assert b.bodies is None
    if a.bodies is not None:  # the pieces the builder encodes are the same bodies, canonical
        assert b"".join(a.bodies[0]) == _canonical(b.text)
        assert b"".join(a.bodies[1]) == _canonical(b.html)
    assert (a.html, a.text, a.subject, a.languages, a.unsubscribe) == (
        b.html,
        b.text,
        b.subject,
        b.languages,
        b.unsubscribe,
    )


def test_the_example_renders_from_stencils_exactly(office: Path) -> None:
    fast, full = renderers(office)
    assert fast.config.unsubscribe_url is not None and "{token}" in fast.config.unsubscribe_url
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(office / "templates"))
    for name in ("release", "wire", "custom"):
        assert stencil_safe(env, f"{name}.html.j2") is not None, name
        assert stencil_safe(env, f"{name}.txt.j2") is not None, name
    # Only the values a template uses make variants: the example's use the greeting and links.
    assert stencil_safe(env, "release.html.j2") == {
        ("greetings", 0),
        ("unsubscribe_url",),
        ("unsubscribe_mailto",),
    }
    assert ("recipient", "beat") in (stencil_safe(env, "custom.html.j2") or ())
    people = [c for c in read_contacts(office, ["example"]) if isinstance(c, Contact)]
    assert len(people) >= 12
    for who in people:
        same(fast, full, who)
        same(fast, full, who, template="custom")
    # Every template/languages/emptiness variant got a stencil, and they were what rendered:
    # far fewer stencils than renders, and each stencil's HTML had its CSS inlined once.
    assert 3 <= len(fast.stencils) < 2 * len(people)
    assert len(full.stencils) == 0
    html = fast.render(people[0]).html
    assert "<style>" in html and 'style="' in html  # @media kept; the rest inlined


# Most values from characters that matter to HTML, text and CSS (so that many examples take the
# stencil path), the rest from all of Unicode (most of which take the full path).
_html_text = st.text(st.sampled_from(list("abcXYZ АбвЖжәҚ'&<>\"=-.\xa0")), max_size=20)
values = st.one_of(_html_text, _html_text, _html_text, st.text(st.characters(codec="utf-8"), max_size=30))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=values,
    outlet=values,
    beat=values,
    salutation=values,
    local=st.from_regex(r"[a-z0-9.&'+]{1,12}", fullmatch=True),
)
def test_any_values_render_as_the_full_path_would(
    office: Path, name: str, outlet: str, beat: str, salutation: str, local: str
) -> None:
    fast, full = renderers_cached(office)
    fields = {"outlet": outlet, "beat": beat, "salutation": salutation, "region": beat[:3]}
    who = contact(f"{local}@example.org", name, fields=fields)
    for template in ("release", "wire", "custom"):
        same(fast, full, who, template=template)
    # ... and every example whose values are all plain did use the stencil
    context = fast._context(who, fast.variant(fast.languages_for(who)))
    used = [_value(context, path) for path in fast._stencilled("custom") or ()]
    plain = all(v in ("", None) or (isinstance(v, str) and not _UNPLAIN.search(v)) for v in used)
    assert (fast.render(who, template="custom").bodies is not None) == plain
    STENCILLED.append(plain)


STENCILLED: list[bool] = []


def test_most_generated_examples_took_the_stencil_path() -> None:
    """The hypothesis test above is only worth something if many examples used stencils."""
    if len(STENCILLED) < 100:
        pytest.skip("runs after test_any_values_render_as_the_full_path_would, in the same session")
    assert sum(STENCILLED) >= len(STENCILLED) // 5, (sum(STENCILLED), len(STENCILLED))


_CACHE: dict[Path, tuple[Renderer, Renderer]] = {}


def renderers_cached(root: Path) -> tuple[Renderer, Renderer]:
    if root not in _CACHE:
        _CACHE[root] = renderers(root)
    return _CACHE[root]


@pytest.mark.parametrize(
    "snippet",
    [
        "{{ recipient.name | upper }}",
        "{{ recipient.name ~ '!' }}",
        "{% if recipient.lang == 'kk' %}Сәлем{% endif %}",
        "{% for g in greetings %}{{ g }}{% endfor %}",
        "{% set who = recipient.name %}{{ who }}",
        "{% macro hi() %}{{ recipient.name }}{% endmacro %}{{ hi() | upper }}",
        "{% filter upper %}{{ recipient.name }}{% endfilter %}",
        "{{ recipient.name if recipient.name else 'colleague' }}",
        "{{ recipient | length }}",
        "{{ unsubscribe_url | default('none') }}",
    ],
)
def test_templates_a_stencil_cannot_follow_take_the_full_path(office: Path, snippet: str) -> None:
    folder = office / "templates"
    (folder / "odd.html.j2").write_text(f"<html><body><p>{snippet}</p></body></html>\n", encoding="utf-8")
    (folder / "odd.txt.j2").write_text(f"{snippet}\n", encoding="utf-8")
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(folder))
    assert stencil_safe(env, "odd.html.j2") is None
    fast, full = renderers(office)
    for who in (contact(name="Айгерим", lang="kk"), contact(name="", lang="ru")):
        same(fast, full, who, template="odd")
    assert len(fast.stencils) == 0


def test_an_include_is_followed(office: Path) -> None:
    folder = office / "templates"
    (folder / "part_ok.html.j2").write_text("<p>{{ recipient.name }}</p>", encoding="utf-8")
    (folder / "part_bad.html.j2").write_text("<p>{{ recipient.name | title }}</p>", encoding="utf-8")
    (folder / "part_raw.j2").write_text("<p>{{ recipient.name }}</p>", encoding="utf-8")  # not autoescaped
    for name, part in (
        ("inc_ok", "part_ok.html.j2"),
        ("inc_bad", "part_bad.html.j2"),
        ("inc_raw", "part_raw.j2"),
    ):
        (folder / f"{name}.html.j2").write_text(f'{{% include "{part}" %}}', encoding="utf-8")
        (folder / f"{name}.txt.j2").write_text("{{ recipient.name }}\n", encoding="utf-8")
    (folder / "inc_dynamic.html.j2").write_text("{% include recipient.name %}", encoding="utf-8")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2", "html"), default=False),
    )
    assert stencil_safe(env, "inc_ok.html.j2") == {("recipient", "name")}
    assert stencil_safe(env, "inc_bad.html.j2") is None
    assert stencil_safe(env, "inc_raw.html.j2") is None  # the value goes in unescaped there
    assert stencil_safe(env, "inc_dynamic.html.j2") is None
    fast, full = renderers(office)
    for template in ("inc_ok", "inc_bad", "inc_raw"):
        same(fast, full, contact(name="Tom &amp; Jerry <i>TV</i>"), template=template)
        same(fast, full, contact(name="Anna Maria"), template=template)
    assert len(fast.stencils) == 1  # inc_ok's


def test_a_value_where_escaping_differs_falls_back_to_the_full_path(office: Path) -> None:
    """A name inside <style> is written raw by the inliner: the probe catches it."""
    folder = office / "templates"
    (folder / "styled.html.j2").write_text(
        "<html><head><title>{{ recipient.name }}</title><style>@media print { p { content: '{{ recipient.name }}'; } }"
        "</style></head><body><p>{{ recipient.name }}</p></body></html>\n",
        encoding="utf-8",
    )
    (folder / "styled.txt.j2").write_text("{{ recipient.name }}\n", encoding="utf-8")
    fast, full = renderers(office)
    for name in ("Tom & Jerry <tj>", 'O\'Brien "Ed"', "Иван"):
        same(fast, full, contact(name=name), template="styled")
    assert len(fast.stencils) == 0


def test_errors_still_name_the_template_line_and_the_contact(office: Path) -> None:
    folder = office / "templates"
    (folder / "missing.html.j2").write_text("<p>\n{{ recipient.phone }}</p>\n", encoding="utf-8")
    (folder / "missing.txt.j2").write_text("{{ recipient.name }}\n", encoding="utf-8")
    fast, _ = renderers(office)
    with pytest.raises(Exception, match=r"templates/missing.html.j2:2: .*phone.*contacts/test.csv:2"):
        fast.render(contact(), template="missing")


def test_values_a_template_does_not_use_make_no_new_variants(office: Path) -> None:
    fast, full = renderers(office)
    people = [
        contact(f"p{n}@example.org", name, fields={"outlet": outlet, "beat": beat, "region": "Astana"})
        for n, (name, outlet, beat) in enumerate(
            [
                ("Иван Петров", "", ""),
                ("Анна Ким", "Регион-ТВ", ""),
                ("Ли Вэй", "", "economy"),
                ("Ян", "X", "Y"),
            ]
        )
    ]
    for who in people:
        same(fast, full, who)
    assert len(fast.stencils) == 1  # release.* use only the greeting and the unsubscribe links
    for who in people:
        same(fast, full, who, template="custom")
    assert len(fast.stencils) == 1 + 4  # custom uses outlet and beat: each empty/filled pattern


def test_only_the_varying_keys_of_the_context_differ_between_recipients(office: Path) -> None:
    """Stencils assume every other context key is the same for all recipients of a variant: a
    new per-recipient key in Renderer._context must be added to stencil.VARYING."""
    fast, _ = renderers(office)
    variant = fast.variant(("ru", "en"))
    a = fast._context(contact("a@example.org", "Иван", fields={"salutation": "Уважаемый Иван"}), variant)
    b = fast._context(contact("b@example.net", "", lang="ru", fields={"outlet": "X"}), variant)
    assert a.keys() == b.keys()
    assert {key for key in a if a[key] != b[key]} == VARYING


HTML = "<html><head><style>{css}</style></head><body>{body}</body></html>\n"


@pytest.mark.parametrize(
    ("html", "text", "who"),
    [
        pytest.param(
            HTML.format(css="", body="<p title={{ recipient.name }}>x</p>"),
            "x\n",
            contact(name="Anna Smith"),
            id="unquoted attribute",
        ),
        pytest.param(
            HTML.format(css=".vip { color: red }", body='<p class="{{ recipient.tier }}">x</p>'),
            "x\n",
            contact(fields={"tier": "vip"}),
            id="a class that CSS selects",
        ),
        pytest.param(
            HTML.format(
                css='a[href^="mailto"] { color: #888 }', body='<a href="{{ unsubscribe_mailto }}">u</a>'
            ),
            "x\n",
            contact(),
            id="an attribute selector on a link",
        ),
        pytest.param(
            "<html><body>{% block g %}<p>{{ greetings[0] }}</p>{% endblock %}</body></html>\n",
            "{% block g %}{{ greetings[0] }}{% endblock %}\n{{ self.g() | replace(' ', '_') }}\n",
            contact(name="Anna Maria Smith"),
            id="a block's output through a filter",
        ),
        pytest.param(
            "<html><body><p>{{ greetings[0] }}</p></body></html>\n",
            "{% block g %}{{ greetings[0] }}{% endblock %}\n{{ self.g() | truncate(12) }}\n",
            contact(name="Anna Maria Smith"),
            id="a block's output truncated",
        ),
        pytest.param(
            "<html><body><p>x</p></body></html>\n",
            "{% block g %}{{ greetings[0] }}{% endblock %}\n{% set x %}{{ self.g() }}{% endset %}{{ x | wordwrap(10) }}\n",
            contact(name="Anna Maria Smith"),
            id="a block's output captured and wrapped",
        ),
        pytest.param(
            "<html><body>{% filter upper %}{% include 'part_ok.html.j2' %}{% endfilter %}</body></html>\n",
            "x\n",
            contact(name="Anna"),
            id="an include inside a filter",
        ),
        pytest.param(
            "<html><body><p>x</p></body></html>\n",
            "{{ recipient.sig }} {{ recipient.role }}\nbody\n",
            contact(fields={"sig": "--", "role": ""}),
            id="a value that makes the signature separator",
        ),
        pytest.param(
            "<html><body><p>\ue0007\ue001 {{ recipient.name }}</p></body></html>\n",
            "x\n",
            contact(name="Anna"),
            id="the mark character in the template",
        ),
    ],
)
def test_what_a_stencil_cannot_reproduce_is_rendered_in_full(
    office: Path, html: str, text: str, who: Contact
) -> None:
    """Found in review: each of these once came out of a stencil different from the full render."""
    folder = office / "templates"
    (folder / "part_ok.html.j2").write_text("<p>{{ recipient.name }}</p>", encoding="utf-8")
    (folder / "edge.html.j2").write_text(html, encoding="utf-8")
    (folder / "edge.txt.j2").write_text(text, encoding="utf-8")
    fast, full = renderers(office)
    same(fast, full, who, template="edge")
    assert fast.render(who, template="edge").bodies is None


def test_a_column_named_like_a_dict_method_is_not_stencilled(office: Path) -> None:
    """To Jinja ``recipient.items`` is the dict's method, not the column "items"."""
    folder = office / "templates"
    (folder / "items.html.j2").write_text(
        "<p>{{ recipient.items }} {{ recipient['items'] }}</p>", encoding="utf-8"
    )
    (folder / "subscript.html.j2").write_text("<p>{{ recipient['items'] }}</p>", encoding="utf-8")
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(folder))
    assert stencil_safe(env, "items.html.j2") is None
    assert stencil_safe(env, "subscript.html.j2") == {("recipient", "items")}


def test_stencils_stop_at_their_limit_and_the_rest_render_in_full(office: Path) -> None:
    fast, full = renderers(office)
    fast.stencils.limit = 2
    people = [
        contact(f"p{n}@example.org", "Анна", fields={"outlet": outlet, "beat": beat, "region": "Astana"})
        for n, (outlet, beat) in enumerate([("", ""), ("X", ""), ("", "Y"), ("X", "Y")])
    ]
    for who in people:
        same(fast, full, who, template="custom")
    assert len(fast.stencils) == 2
    assert [fast.render(who, template="custom").bodies is not None for who in people] == [
        True,
        True,
        False,
        False,
    ]

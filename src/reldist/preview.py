"""The preview gallery: every recipient's message as a static local page (``reldist preview``).

Owns writing ``index.html`` and one ``recipients/<n>.js`` a recipient into a folder
(``preview/<release-id>/`` by default). The index lists the recipients grouped by languages and
template, with counts, the skipped rows with their reasons and the deliverability findings of
``reldist check``; choosing a recipient (a click, the arrow keys, or ``#recipient=N`` in the URL)
loads that recipient's file and shows the HTML part in sandboxed frames 600 px and 375 px wide,
the plain-text part, the decoded headers, the size on the wire and the attachments.

The page works from ``file://`` with no server and loads nothing from the internet: its Content
Security Policy, which the ``srcdoc`` frames inherit, allows only inline styles, its own scripts
and ``data:`` images, so a remote image or tracking pixel in a release is not fetched (it shows
as a broken image, and the check names it).

Messages are built by the same ``Job`` (renderer, builder, planner) as a send, one at a time,
and written as they come: memory stays flat however long the list. It sends nothing and touches
no ledger.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from .compose import Built
from .deliverability import Inspector, html_size_as_sent
from .findings import Finding
from .job import Job
from .plan import Preflight

__all__ = ["PreviewResult", "default_folder", "write_preview"]

RECIPIENTS = "recipients"
_OURS = re.compile(r"^\d+\.js$")
_parser = BytesParser(policy=policy.default)


@dataclass(slots=True)
class PreviewResult:
    """What :func:`write_preview` wrote."""

    index: Path
    report: Preflight
    groups: dict[tuple[tuple[str, ...], str], int] = field(default_factory=dict)  # (languages, template)
    skipped: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def recipients(self) -> int:
        return sum(self.groups.values())


def default_folder(job: Job) -> Path:
    """``<workspace>/preview/<release-id>/``."""
    return job.workspace.root / "preview" / job.release.id


def write_preview(job: Job, folder: Path | None = None, *, now: dt.datetime | None = None) -> PreviewResult:
    """Build every recipient's message and write the preview page into ``folder``."""
    folder = folder or default_folder(job)
    recipients_dir = folder / RECIPIENTS
    recipients_dir.mkdir(parents=True, exist_ok=True)
    for old in recipients_dir.iterdir():  # a previous preview's files; nothing else is touched
        if _OURS.match(old.name):
            old.unlink()
    now = now or dt.datetime.now(dt.UTC)
    report = Preflight(job.release)
    inspector = Inspector(job, now=now)
    result = PreviewResult(index=folder / "index.html", report=report)
    groups: dict[tuple[tuple[str, ...], str], list[dict[str, Any]]] = {}
    skipped: list[dict[str, str]] = []
    number = 0
    for entry, built in job.walk(report, date=job.message_date(now)):
        if built is None:
            label = "do not contact" if entry.status == "suppressed" else "skipped"
            skipped.append(
                {"kind": label, "source": entry.source, "address": entry.address, "reason": entry.reason}
            )
            continue
        number += 1
        inspector.add(built)
        record = _record(job, number, built)
        (recipients_dir / f"{number}.js").write_text(
            f"reldistPreview.receive({number}, {json.dumps(record, ensure_ascii=False)});\n", encoding="utf-8"
        )
        key = (built.rendered.languages, built.rendered.template)
        groups.setdefault(key, []).append(
            {
                "n": number,
                "name": built.contact.name,
                "address": built.contact.address,
                "outlet": built.contact.fields.get("outlet", ""),
                "source": built.contact.source,
            }
        )
    for dup in report.duplicates:
        skipped.append({"kind": "merged", "source": dup.source, "address": dup.address, "reason": dup.reason})
    result.findings = inspector.findings(report)
    result.groups = {key: len(items) for key, items in groups.items()}
    result.skipped = len(skipped)
    result.index.write_text(_page(job, groups, skipped, result.findings, now), encoding="utf-8")
    return result


def _record(job: Job, number: int, built: Built) -> dict[str, Any]:
    """One recipient's file: everything the page shows for them."""
    message = _parser.parsebytes(built.data)
    headers = [[name, str(value)] for name, value in message.items()]
    attachments = [
        {
            "filename": part.get_filename() or "",
            "content_type": part.get_content_type(),
            "size": len(part.get_payload(decode=True) or b""),
        }
        for part in message.iter_attachments()
    ]
    html_sent = html_size_as_sent(built.rendered.html)
    return {
        "n": number,
        "address": built.contact.address,
        "name": built.contact.name,
        "source": built.contact.source,
        "subject": built.rendered.subject,
        "languages": list(built.rendered.languages),
        "template": built.rendered.template,
        "size": len(built.data),
        "html_sent": html_sent,
        "html_limit": job.workspace.config.max_html,
        "headers": headers,
        "text": built.rendered.text,
        "html": built.rendered.html,
        "attachments": attachments,
    }


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _page(
    job: Job,
    groups: dict[tuple[tuple[str, ...], str], list[dict[str, Any]]],
    skipped: list[dict[str, str]],
    findings: list[Finding],
    now: dt.datetime,
) -> str:
    release = job.release
    total = sum(len(items) for items in groups.values())
    sidebar: list[str] = []
    for (languages, template), items in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        sidebar.append(
            f'<section class="group"><h2>{_e(", ".join(languages))} · {_e(template)} '
            f'<span class="count">{len(items)}</span></h2><ol>'
        )
        for item in items:
            search = " ".join(str(item[k]) for k in ("name", "address", "outlet", "source")).lower()
            sidebar.append(
                f'<li data-n="{item["n"]}" data-search="{_e(search)}"><a href="#recipient={item["n"]}">'
                f'<span class="name">{_e(item["name"] or item["address"])}</span>'
                f'<span class="addr">{_e(item["address"])}</span></a></li>'
            )
        sidebar.append("</ol></section>")
    if skipped:
        sidebar.append(
            f'<section class="group skipped"><h2>Not sent <span class="count">{len(skipped)}</span></h2><ul>'
        )
        for row in skipped:
            sidebar.append(
                f'<li><span class="kind">{_e(row["kind"])}</span> <span class="src">{_e(row["source"])}</span>'
                f'<span class="reason">{_e(row["reason"])}</span></li>'
            )
        sidebar.append("</ul></section>")
    shown = [f for f in findings if f.code not in ("bad-row", "duplicate")]
    checks = ""
    if shown:
        rows = "".join(
            f'<li class="{f.level}"><b>{_e(f.level)}</b> <code>{_e(f.place)}</code> {_e(f.message)}</li>'
            for f in shown
        )
        warnings = sum(1 for f in shown if f.level != "note")
        checks = (
            f'<details class="checks"{" open" if warnings else ""}><summary>Check: {warnings} warning(s), '
            f"{len(shown) - warnings} note(s)</summary><ul>{rows}</ul></details>"
        )
    header = (
        f"<h1>{_e(release.id)}</h1><p>{total} recipient(s) in {len(groups)} language/template group(s) · "
        f"{len(skipped)} not sent · languages: {_e(', '.join(release.languages))} · "
        f"lists: {_e(', '.join(job.planner.lists))}</p>"
        f'<p class="muted">Preview made {_e(now.astimezone(job.workspace.config.timezone).strftime("%Y-%m-%d %H:%M %Z"))}; '
        "nothing was sent. Images from the internet are not loaded here.</p>"
    )
    return (
        _TEMPLATE.replace("{{TITLE}}", _e(f"Preview: {release.id}"))
        .replace("{{HEADER}}", header + checks)
        .replace("{{SIDEBAR}}", "\n".join(sidebar))
        .replace("{{FIRST}}", "1" if total else "0")
    )


_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline' file:; style-src 'unsafe-inline'; img-src data:; font-src 'none'; connect-src 'none'; form-action 'none'; base-uri 'none'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{{TITLE}}</title>
<style>
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; color: #1f2933; background: #f5f7fa; }
  header { padding: 12px 20px; background: #0b3d2e; color: #fff; }
  header h1 { margin: 0; font-size: 18px; }
  header p { margin: 2px 0; }
  header .muted { color: #c8e6d8; font-size: 12px; }
  .checks { margin: 8px 0 0; background: #fff; color: #1f2933; border-radius: 4px; padding: 6px 10px; }
  .checks summary { cursor: pointer; font-weight: 600; }
  .checks ul { margin: 4px 0; padding-left: 18px; font-size: 13px; max-height: 9em; overflow-y: auto; }
  .checks li { margin: 2px 0; }
  .checks code { color: #52606d; }
  .checks li.warning b, .checks li.error b { color: #9b1c1c; }
  .checks li.note b { color: #1a5fb4; }
  .layout { display: flex; min-height: calc(100vh - 70px); }
  aside { width: 260px; flex: none; border-right: 1px solid #d9e2ec; background: #fff; overflow-y: auto; max-height: calc(100vh - 70px); position: sticky; top: 0; }
  aside input { width: calc(100% - 16px); margin: 8px; padding: 6px 8px; border: 1px solid #bcccdc; border-radius: 4px; }
  .group h2 { font-size: 13px; margin: 0; padding: 6px 10px; background: #eef1f3; border-top: 1px solid #d9e2ec; }
  .count { float: right; background: #0b3d2e; color: #fff; border-radius: 9px; padding: 0 7px; font-size: 12px; }
  .group ol, .group ul { list-style: none; margin: 0; padding: 0; }
  .group li a { display: block; padding: 5px 10px; color: inherit; text-decoration: none; border-left: 3px solid transparent; }
  .group li a:hover { background: #f0f4f8; }
  .group li.active a { background: #e3f2ea; border-left-color: #2f855a; }
  .group li.hidden { display: none; }
  .name { display: block; font-weight: 600; }
  .addr, .src { display: block; color: #52606d; font-size: 12px; word-break: break-all; }
  .skipped li { padding: 5px 10px; border-top: 1px solid #f0f4f8; }
  .kind { font-weight: 600; color: #9b1c1c; }
  .reason { display: block; }
  main { flex: 1; padding: 12px 16px; min-width: 0; }
  #subject { font-size: 18px; margin: 0 0 4px; }
  .meta { color: #52606d; margin: 0 0 12px; }
  .meta .over { color: #9b1c1c; font-weight: 600; }
  .nav button { margin-right: 6px; }
  .frames { display: flex; gap: 16px; flex-wrap: wrap; align-items: flex-start; }
  figure { margin: 0; }
  figcaption { font-size: 12px; color: #52606d; margin-bottom: 4px; }
  iframe { border: 1px solid #bcccdc; background: #fff; height: 760px; display: block; }
  #desktop { width: 660px; }  /* the 600 px layout, wider than its 620 px phone breakpoint */
  #mobile { width: 392px; }  /* 375 px of layout beside a 15 px scrollbar */
  pre { white-space: pre-wrap; background: #fff; border: 1px solid #d9e2ec; padding: 12px; max-width: 80ch; font: 13px/1.4 ui-monospace, Menlo, Consolas, monospace; }
  table { border-collapse: collapse; background: #fff; }
  td { border: 1px solid #d9e2ec; padding: 3px 8px; vertical-align: top; font: 12px/1.4 ui-monospace, Menlo, Consolas, monospace; word-break: break-all; }
  td:first-child { font-weight: 600; white-space: nowrap; word-break: normal; }
  h3 { font-size: 15px; margin: 20px 0 6px; }
</style>
</head>
<body>
<header>{{HEADER}}</header>
<div class="layout">
<aside>
<input id="filter" type="search" placeholder="Filter: name, address, outlet, list" aria-label="Filter recipients">
{{SIDEBAR}}
</aside>
<main>
<p id="empty">Choose a recipient on the left.</p>
<article id="message" hidden>
  <p class="nav"><button id="prev" type="button">&larr; Previous</button><button id="next" type="button">Next &rarr;</button></p>
  <h2 id="subject"></h2>
  <p class="meta" id="meta"></p>
  <div class="frames">
    <figure><figcaption>Desktop · 600 px layout</figcaption><iframe id="desktop" title="HTML part, desktop width" sandbox="allow-popups allow-popups-to-escape-sandbox"></iframe></figure>
    <figure><figcaption>Phone · 375 px</figcaption><iframe id="mobile" title="HTML part, phone width" sandbox="allow-popups allow-popups-to-escape-sandbox"></iframe></figure>
  </div>
  <h3>Plain-text part</h3>
  <pre id="text"></pre>
  <h3>Headers</h3>
  <table id="headers"></table>
  <h3>Attachments</h3>
  <ul id="attachments"></ul>
</article>
</main>
</div>
<script>
"use strict";
(function () {
  var cache = {}, current = 0, first = {{FIRST}};
  var items = Array.prototype.slice.call(document.querySelectorAll("li[data-n]"));
  function $(id) { return document.getElementById(id); }
  function size(n) {
    if (n < 1024) return n + " bytes";
    if (n < 1048576) return (n / 1024).toFixed(1) + " KB";
    return (n / 1048576).toFixed(1) + " MB";
  }
  function text(el, value) { el.textContent = value; return el; }
  function show(d) {
    $("empty").hidden = true;
    $("message").hidden = false;
    text($("subject"), d.subject);
    var meta = $("meta");
    meta.textContent = "";
    meta.appendChild(document.createTextNode(
      "To " + (d.name ? d.name + " <" + d.address + ">" : d.address) + " · " + d.source +
      " · " + d.languages.join(", ") + " · template " + d.template + " · " + size(d.size) + " on the wire · HTML part "));
    var html = text(document.createElement("span"), size(d.html_sent) + " as sent");
    if (d.html_sent > d.html_limit) { html.className = "over"; html.textContent += " (over " + size(d.html_limit) + ": Gmail clips it)"; }
    meta.appendChild(html);
    $("desktop").srcdoc = d.html;
    $("mobile").srcdoc = d.html;
    text($("text"), d.text);
    var table = $("headers");
    table.textContent = "";
    d.headers.forEach(function (h) {
      var tr = document.createElement("tr");
      tr.appendChild(text(document.createElement("td"), h[0]));
      tr.appendChild(text(document.createElement("td"), h[1]));
      table.appendChild(tr);
    });
    var list = $("attachments");
    list.textContent = "";
    if (!d.attachments.length) list.appendChild(text(document.createElement("li"), "none"));
    d.attachments.forEach(function (a) {
      list.appendChild(text(document.createElement("li"), a.filename + " (" + a.content_type + ", " + size(a.size) + ")"));
    });
    document.title = d.subject + " — " + d.address;
  }
  function select(n) {
    if (!n || !document.querySelector('li[data-n="' + n + '"]')) return;
    current = n;
    items.forEach(function (li) { li.classList.toggle("active", Number(li.dataset.n) === n); });
    var active = document.querySelector('li[data-n="' + n + '"]');
    if (active.scrollIntoView) active.scrollIntoView({ block: "nearest" });
    if (cache[n]) { show(cache[n]); return; }
    var script = document.createElement("script");
    script.src = "recipients/" + n + ".js";
    script.onerror = function () {
      $("empty").hidden = false;
      text($("empty"), "recipients/" + n + ".js is missing: run reldist preview again.");
    };
    document.body.appendChild(script);
  }
  window.reldistPreview = {
    receive: function (n, data) { cache[n] = data; if (n === current) show(data); }
  };
  function fromHash() {
    var m = /recipient=(\\d+)/.exec(location.hash);
    return m ? Number(m[1]) : 0;
  }
  function visible() { return items.filter(function (li) { return !li.classList.contains("hidden"); }); }
  function step(delta) {
    var shown = visible(), at = shown.findIndex(function (li) { return Number(li.dataset.n) === current; });
    var next = shown[Math.min(shown.length - 1, Math.max(0, at + delta))];
    if (next) location.hash = "recipient=" + next.dataset.n;
  }
  window.addEventListener("hashchange", function () { select(fromHash()); });
  $("prev").addEventListener("click", function () { step(-1); });
  $("next").addEventListener("click", function () { step(1); });
  document.addEventListener("keydown", function (e) {
    if (e.target === $("filter")) return;
    if (e.key === "ArrowDown" || e.key === "j") { step(1); e.preventDefault(); }
    if (e.key === "ArrowUp" || e.key === "k") { step(-1); e.preventDefault(); }
  });
  $("filter").addEventListener("input", function () {
    var q = this.value.trim().toLowerCase();
    items.forEach(function (li) { li.classList.toggle("hidden", q !== "" && li.dataset.search.indexOf(q) < 0); });
  });
  select(fromHash() || first);
})();
</script>
</body>
</html>
"""

"""``reldist serve``: the web endpoint behind the unsubscribe links (Starlette under uvicorn).

- ``POST <link>`` with ``List-Unsubscribe=One-Click`` (urlencoded or multipart, RFC 8058), or the
  page's button: suppresses the recipient (source ``unsubscribe-link``) and records the
  ``unsubscribed`` event, answering 200; a repeated POST is harmless.
- ``GET <link>``: changes nothing (mail scanners follow links); a small page in the recipient's
  language with one button that POSTs. No JavaScript, no cookie, no login.
- A token that does not verify or names nothing in the ledger: 404 with a plain page.
- ``GET /health``: ``ok`` when the ledger answers.

The link's path comes from ``[unsubscribe] url`` (``https://press.example.org/unsubscribe/{token}``
serves ``/unsubscribe/<token>``). The access log shows the method, the path with the token left
out, and the status: never an address, never a token (a token in a log would let its reader
unsubscribe someone). It is meant to run behind the organisation's HTTPS proxy.
"""

from __future__ import annotations

import contextlib
import html
import logging
import re
import signal
import time
import tomllib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .config import Config
from .errors import ConfigError, LedgerUnreachableError
from .feedback.store import Feedback, unsubscribe
from .ledger import Ledger
from .ledgerdb import Target
from .ledgerrows import Row
from .render import unsubscribe_keys

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["PAGE_STRINGS", "make_app", "run"]

log = logging.getLogger("reldist.serve")

#: The page's strings, per language; ``templates/strings.toml`` may override each one (same keys).
PAGE_STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "unsubscribe_title": "Unsubscribe",
        "unsubscribe_question": "Stop receiving press releases from {organisation} at this address?",
        "unsubscribe_button": "Unsubscribe",
        "unsubscribe_done": "You are unsubscribed",
        "unsubscribe_done_note": "{organisation} will not send press releases to this address again.",
    },
    "ru": {
        "unsubscribe_title": "Отписка от рассылки",
        "unsubscribe_question": "Больше не получать пресс-релизы {organisation} на этот адрес?",
        "unsubscribe_button": "Отписаться",
        "unsubscribe_done": "Вы отписались от рассылки",
        "unsubscribe_done_note": "{organisation} больше не будет присылать пресс-релизы на этот адрес.",
    },
    "kk": {
        "unsubscribe_title": "Жазылымнан бас тарту",
        "unsubscribe_question": "{organisation} баспасөз релиздерін бұл мекенжайға енді алмайсыз ба?",
        "unsubscribe_button": "Жазылымнан бас тарту",
        "unsubscribe_done": "Сіз жазылымнан бас тарттыңыз",
        "unsubscribe_done_note": "{organisation} бұл мекенжайға енді баспасөз релиздерін жібермейді.",
    },
}
_NOT_FOUND = (
    "This unsubscribe link is not valid (it may have been cut short by a mail program). "
    "Nothing was changed. Reply to the press release and ask to be removed instead."
)
_PAGE = """<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{title}</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:36em;margin:3em auto;padding:0 1em;color:#222}}
button{{font:inherit;padding:.6em 1.4em;border:0;border-radius:4px;background:#1f5c99;color:#fff;cursor:pointer}}</style>
</head><body><h1>{title}</h1>{body}</body></html>
"""


def link_pattern(url: str | None) -> tuple[re.Pattern[str], str | None]:
    """From ``[unsubscribe] url``: a pattern matching the served path (the token as its group),
    or the query parameter that carries the token (``?t={token}``)."""
    parts = urlsplit(url or "https://localhost/unsubscribe/{token}")
    if "{token}" in parts.path:
        before, after = parts.path.split("{token}", 1)
        return re.compile(re.escape(before) + r"([A-Za-z0-9_-]+)" + re.escape(after)), None
    found = re.search(r"(?:^|&)([^=&]+)=\{token\}", parts.query)
    if found is None:  # config refuses a url without {token}
        raise ConfigError("'unsubscribe.url' needs {token}")
    return re.compile(re.escape(parts.path or "/")), found.group(1)


def page_strings(config: Config) -> dict[str, dict[str, str]]:
    """The page strings per language: the built-in ones, overridden by templates/strings.toml."""
    strings = {lang: dict(table) for lang, table in PAGE_STRINGS.items()}
    path = config.root / "templates" / "strings.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        data = {}
    organisation = config.sender.organisation or config.sender.name
    for lang, table in data.items():
        if isinstance(table, dict):
            merged = strings.setdefault(lang, dict(PAGE_STRINGS["en"]))
            merged.update({k: v for k, v in table.items() if isinstance(v, str)})
    for merged in strings.values():
        merged.setdefault("organisation", organisation)
    return strings


def _render(lang: str, title: str, body: str) -> str:
    return _PAGE.format(lang=html.escape(lang), title=html.escape(title), body=body)


def make_app(config: Config, *, ledger: Target | None = None) -> Starlette:
    """The ASGI application for ``config``'s workspace."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.responses import HTMLResponse, PlainTextResponse
    from starlette.routing import Route

    keys = unsubscribe_keys(config)
    if keys is None:
        raise ConfigError(
            f"no unsubscribe key ({config.unsubscribe_key_file.name}); run 'reldist keygen'",
            place=config.path.name,
        )
    pattern, query_name = link_pattern(config.unsubscribe_url)
    strings = page_strings(config)
    where = ledger if ledger is not None else config.ledger
    state: dict[str, Feedback] = {}

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # One connection, used only from the event loop's thread (the endpoints are async and
        # their SQL is short), so SQLite's one-thread rule holds without a pool.
        state["feedback"] = Feedback(Ledger.open(where))
        try:
            yield
        finally:
            state["feedback"].ledger.close()

    def reopen() -> None:
        """A PostgreSQL ledger's connection was lost (a database restart, a failover, an idle
        timeout): open a new one, so that the endpoint outlives the database's restarts."""
        with contextlib.suppress(Exception):
            state["feedback"].ledger.close()
        state["feedback"] = Feedback(Ledger.open(where))

    def unavailable(exc: LedgerUnreachableError) -> Response:
        # 503, not 500: RFC 8058 senders and proxies retry a one-click POST that met it.
        log.warning("the ledger cannot be reached: %s", exc.message)
        return PlainTextResponse(
            "The service is unavailable for a moment; try again later.\n", status_code=503
        )

    async def retried(handler: Callable[[Request], Awaitable[Response]], request: Request) -> Response:
        """``handler``, and once more on a new connection when the old one turns out lost (safe:
        a failed transaction recorded nothing, and an unsubscribe recorded twice is recorded once)."""
        try:
            return await handler(request)
        except LedgerUnreachableError:
            pass
        try:
            reopen()
            return await handler(request)
        except LedgerUnreachableError as exc:
            return unavailable(exc)

    def words(row: Row) -> tuple[str, Mapping[str, str]]:
        for lang in (*row.language.split(","), "en"):
            if lang in strings:
                return lang, strings[lang]
        return "en", strings["en"]

    def text(table: Mapping[str, str], key: str) -> str:
        return html.escape(table[key].format(organisation=table["organisation"]))

    def not_found() -> Response:
        return HTMLResponse(_render("en", "Not found", f"<p>{html.escape(_NOT_FOUND)}</p>"), status_code=404)

    def find(request: Request) -> Row | None:
        match = pattern.fullmatch(request.url.path)
        if match is None:
            return None
        token = request.query_params.get(query_name, "") if query_name else match.group(1)
        return state["feedback"].by_token(keys, token) if token else None

    async def link(request: Request) -> Response:
        return await retried(answer, request)

    async def answer(request: Request) -> Response:
        row = find(request)
        if row is None:
            return not_found()
        lang, table = words(row)
        if request.method != "POST":
            form = (
                f'<p>{text(table, "unsubscribe_question")}</p><form method="post">'
                f'<input type="hidden" name="confirm" value="1">'
                f'<button type="submit">{text(table, "unsubscribe_button")}</button></form>'
            )
            return HTMLResponse(_render(lang, table["unsubscribe_title"], form))
        form_data = await request.form()
        one_click = form_data.get("List-Unsubscribe") == "One-Click"
        unsubscribe(
            state["feedback"], row, source="unsubscribe-link", detail="one-click" if one_click else "page"
        )
        if one_click:
            return PlainTextResponse("unsubscribed\n")
        done = f"<p>{text(table, 'unsubscribe_done_note')}</p>"
        return HTMLResponse(_render(lang, table["unsubscribe_done"], done))

    async def health(request: Request) -> Response:
        return await retried(alive, request)

    async def alive(request: Request) -> Response:
        state["feedback"].db.execute("SELECT 1").fetchone()
        return PlainTextResponse("ok\n")

    app = Starlette(
        routes=[
            Route("/health", health, methods=["GET", "HEAD"]),
            Route("/{path:path}", link, methods=["GET", "HEAD", "POST"]),
        ],
        lifespan=lifespan,
        middleware=[Middleware(AccessLog, pattern=pattern)],
    )

    return app


class AccessLog:
    """ASGI middleware: one log line a request with the method, the path (the token left out;
    paths we do not serve as ``<other>``, since a client may put anything there) and the status."""

    def __init__(self, app: ASGIApp, pattern: re.Pattern[str]) -> None:
        self.app = app
        self.pattern = pattern

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            path = str(scope.get("path", ""))
            shown = path if path == "/health" else "<link>" if self.pattern.fullmatch(path) else "<other>"
            elapsed = (time.perf_counter() - started) * 1000
            log.info("%s %s %d %.1fms", scope.get("method", ""), shown, status, elapsed)


def run(config: Config, *, host: str, port: int) -> None:
    """Serve until SIGTERM or Ctrl-C (uvicorn finishes the requests in flight, then returns)."""
    import uvicorn

    app = make_app(config)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, access_log=False, log_level="info", proxy_headers=True)
    )
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then raises the signal again for the
    # handler it found: make that one a no-op, so a stop is an exit 0 (systemd, Docker, Ctrl-C).
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("stopped")

"""The SMTP password or OAuth2 token: where it comes from, and never letting it show.

Owns resolving the secret lazily (an environment variable, or a command's first line of output,
run without a shell; a token again every few minutes) and scrubbing it, raw and in the base64
forms AUTH uses, from any text that may be shown. A resolved secret lives only in a
:class:`Secret`, whose repr is ``<secret>``. Connecting and AUTH itself are ``smtp``'s business.
"""

from __future__ import annotations

import asyncio
import base64
import shlex
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..settings import SmtpSettings

#: An access token fetched by ``token_command`` is reused by new connections for this long.
TOKEN_REUSE_SECONDS = 300.0


class Secret:
    """A resolved password or token; its repr never shows the value."""

    __slots__ = ("fetched", "value")

    def __init__(self, value: str) -> None:
        self.value = value
        self.fetched = time.monotonic()

    def __repr__(self) -> str:
        return "<secret>"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class Credentials:
    mechanism: Literal["auto", "plain", "login", "xoauth2"]
    username: str
    secret: Secret
    source: str  # where the secret came from, for messages: "RELDIST_SMTP_PASSWORD", ...


class Secrets:
    """The secret of one transport, resolved once (a token: every few minutes) and scrubbed."""

    def __init__(
        self, settings: SmtpSettings, environ: Mapping[str, str], *, table: str = "smtp", place: str = ""
    ) -> None:
        self.settings = settings
        # Errors name the table the settings came from ([smtp], or [inbox] for the IMAP login)
        # and, when given, the file: "reldist.toml: [inbox] password_env: ...".
        self.table = table
        self.place = place
        self._environ = environ
        self._password: Secret | None = None
        self._token: Secret | None = None
        self._lock = asyncio.Lock()

    def forget_token(self) -> None:
        """The server refused the token: fetch a new one next time."""
        self._token = None

    def mechanism(self) -> Literal["auto", "plain", "login", "xoauth2"]:
        s = self.settings
        if s.auth == "auto" and s.token_command and not (s.password_env or s.password_command):
            return "xoauth2"
        return s.auth

    def scrub(self, text: str) -> str:
        """Remove the secret (raw and in the base64 forms AUTH uses) from a text."""
        user = (self.settings.username or "").encode()
        for secret in (self._password, self._token):
            if secret is None or not secret.value:
                continue
            raw = secret.value.encode()
            forms = {
                secret.value,
                base64.b64encode(raw).decode(),
                base64.b64encode(b"\0" + user + b"\0" + raw).decode(),
                base64.b64encode(b"user=" + user + b"\x01auth=Bearer " + raw + b"\x01\x01").decode(),
            }
            for form in sorted(forms, key=len, reverse=True):
                text = text.replace(form, "***")
        return text

    def _error(self, text: str) -> ConfigError:
        return ConfigError(f"[{self.table}] {text}", place=self.place)

    async def _run_command(self, key: str, command: str) -> str:
        try:
            argv = shlex.split(command)
        except ValueError as exc:
            raise self._error(f"{key}: cannot parse {command!r}: {exc}") from None
        if not argv:
            raise self._error(f"{key}: is empty")
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            raise self._error(f"{key}: cannot run {argv[0]!r}: {exc.strerror}") from None
        try:
            out, err = await asyncio.wait_for(process.communicate(), self.settings.timeout)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise self._error(
                f"{key}: {argv[0]!r} gave no answer within {self.settings.timeout:g} s"
            ) from None
        if process.returncode != 0:
            lines = err.decode(errors="replace").strip().splitlines()
            detail = f": {lines[-1][:200]}" if lines else ""
            raise self._error(f"{key}: {argv[0]!r} exited with status {process.returncode}{detail}")
        lines = out.decode(errors="replace").splitlines()
        first = lines[0].strip() if lines else ""
        if not first:
            raise self._error(f"{key}: {argv[0]!r} printed nothing")
        return first

    async def credentials(self) -> Credentials | None:
        """Resolve the secret lazily; a password once per transport, a token every few minutes."""
        s = self.settings
        if not s.username:
            return None
        mechanism = self.mechanism()
        async with self._lock:
            if mechanism == "xoauth2":
                assert s.token_command is not None  # checked in settings.check_smtp
                token = self._token
                if token is None or time.monotonic() - token.fetched > TOKEN_REUSE_SECONDS:
                    token = Secret(await self._run_command("token_command", s.token_command))
                    self._token = token
                return Credentials("xoauth2", s.username, token, "the token from token_command")
            if self._password is None:
                if s.password_env:
                    value = self._environ.get(s.password_env)
                    if value is None:
                        raise self._error(f"password_env: environment variable {s.password_env} is not set")
                    self._password = Secret(value)
                else:
                    assert s.password_command is not None  # checked in settings.check_smtp
                    command = s.password_command
                    value = await self._run_command("password_command", command)
                    self._password = Secret(value)
            source = (
                f"the password in ${s.password_env}"
                if s.password_env
                else "the password from password_command"
            )
            return Credentials(mechanism, s.username, self._password, source)

"""The settings every stage shares: plain data read from ``reldist.toml``, no I/O.

Owns the ``[smtp]``, ``[dkim]``, ``[dispatch]`` and retry settings, the check that SMTP settings
can ever work (:func:`check_smtp`), and sending rates (``30/minute``) with their parser. Loading
(``config``) builds them, the delivery rooms (``transport``, ``ratelimit``, ``send``) read them;
this module imports none of those, so that loading a workspace never loads aiosmtplib or asyncio.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .errors import ConfigError

__all__ = [
    "HELD_MARK",
    "PACING_LIMIT",
    "AuthMethod",
    "DispatchSettings",
    "DkimSettings",
    "Rate",
    "RetrySettings",
    "Security",
    "SmtpSettings",
    "check_smtp",
    "is_loopback",
    "parse_rate",
]

Security = Literal["tls", "starttls", "none"]
AuthMethod = Literal["auto", "plain", "login", "xoauth2"]


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    """The ``[smtp]`` table of ``reldist.toml``. Holds the NAME of a secret, never the secret."""

    host: str
    port: int = 587
    security: Security = "starttls"  # "tls" = implicit TLS (465)
    username: str | None = None
    password_env: str | None = None  # environment variable holding the password
    password_command: str | None = None  # command (no shell) whose first output line is it
    auth: AuthMethod = "auto"
    token_command: str | None = None  # for xoauth2: prints an OAuth2 access token
    ca_file: Path | None = None  # extra CA bundle for private servers
    allow_insecure_auth: bool = False  # AUTH in plain text to a non-loopback host
    connections: int = 4
    messages_per_connection: int = 100  # reconnect after this many messages
    timeout: float = 30.0
    local_hostname: str | None = None


def is_loopback(host: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ::1: AUTH there never leaves the machine."""
    name = host.strip("[]").lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    import ipaddress  # not needed to load a workspace

    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_smtp(s: SmtpSettings) -> None:
    """Reject settings that can never work, before any I/O."""
    if not s.host:
        raise ConfigError("[smtp] host: must not be empty")
    if not 0 < s.port < 65536:
        raise ConfigError(f"[smtp] port: {s.port} is not a TCP port")
    if s.security not in ("tls", "starttls", "none"):
        raise ConfigError(f'[smtp] security: must be "tls", "starttls" or "none", not {s.security!r}')
    if s.auth not in ("auto", "plain", "login", "xoauth2"):
        raise ConfigError(f"[smtp] auth: must be auto, plain, login or xoauth2, not {s.auth!r}")
    if s.connections < 1:
        raise ConfigError("[smtp] connections: must be at least 1")
    if s.messages_per_connection < 1:
        raise ConfigError("[smtp] messages_per_connection: must be at least 1")
    if not s.timeout > 0:
        raise ConfigError("[smtp] timeout: must be more than 0 seconds")
    has_password = bool(s.password_env or s.password_command)
    if s.password_env and s.password_command:
        raise ConfigError("[smtp] password_env: set either password_env or password_command, not both")
    if s.auth == "xoauth2" and not s.token_command:
        raise ConfigError('[smtp] auth: "xoauth2" needs token_command')
    if s.auth in ("plain", "login") and not has_password:
        raise ConfigError(f'[smtp] auth: "{s.auth}" needs password_env or password_command')
    if s.auth == "auto" and has_password and s.token_command:
        raise ConfigError(
            '[smtp] auth: both a password and token_command are set; choose auth = "xoauth2", '
            '"plain" or "login"'
        )
    uses_auth = has_password or s.token_command is not None
    if uses_auth and not s.username:
        raise ConfigError("[smtp] username: required when a password or token_command is set")
    if s.username and not uses_auth:
        raise ConfigError("[smtp] username: set password_env (or password_command, or token_command) as well")
    if uses_auth and s.security == "none" and not s.allow_insecure_auth and not is_loopback(s.host):
        raise ConfigError(
            f'[smtp] security: "none" would send the password unencrypted to {s.host}; '
            'use "starttls" or "tls" (or set allow_insecure_auth = true)'
        )


@dataclass(frozen=True, slots=True)
class DkimSettings:
    """``[dkim]``: sign every message with this key."""

    domain: str
    selector: str
    key_file: Path


@dataclass(frozen=True, slots=True)
class DispatchSettings:
    """``[dispatch]``: how the cron dispatcher behaves."""

    max_late: float = 24 * 3600.0  # seconds after send_at past which a release is not sent
    log_file: Path | None = None  # one line per run and per release; None: no log
    embargo_lead: float = 3600.0  # check warns when the embargo is closer than this to send_at


@dataclass(frozen=True, slots=True)
class RetrySettings:
    """How often a deferred recipient is retried within one run, and the first wait."""

    attempts: int = 3
    backoff: float = 2.0  # seconds before the first retry; doubles each time


#: Rates whose period is at most this long (seconds) are also paced evenly.
PACING_LIMIT = 3600.0
#: How a run that a rate over an hour stopped is recorded in the ledger's ``runs`` (its outcome
#: starts a part with this), so that the schedule knows the release is waiting for the rate.
HELD_MARK = "held by the rate"

_UNITS: dict[str, float] = {}
for _names, _seconds in (
    (("s", "sec", "secs", "second", "seconds"), 1.0),
    (("min", "mins", "minute", "minutes"), 60.0),
    (("h", "hr", "hrs", "hour", "hours"), 3600.0),
    (("d", "day", "days"), 86400.0),
):
    for _name in _names:
        _UNITS[_name] = _seconds

_RATE = re.compile(
    r"""^\s*(?P<count>\d+)\s*(?:/|\bper\b)\s*
        (?P<number>\d+(?:\.\d+)?)?\s*
        (?P<unit>[a-z]+)\s*$""",
    re.IGNORECASE | re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class Rate:
    """At most ``count`` messages in any ``period`` seconds; ``text`` is how the user wrote it."""

    count: int
    period: float  # seconds
    text: str

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError(f"{self.text!r}: the count must be at least 1")
        if not (self.period > 0 and math.isfinite(self.period)):
            raise ValueError(f"{self.text!r}: the period must be a positive number of seconds")

    @property
    def spacing(self) -> float:
        """The even spacing of sends, ``period / count``."""
        return self.period / self.count

    @property
    def paced(self) -> bool:
        """True when sends are spread evenly, not only counted (periods up to an hour)."""
        return self.period <= PACING_LIMIT


def parse_rate(text: str) -> Rate:
    """``"30/minute"`` → ``Rate(30, 60.0, "30/minute")``.

    Accepted: ``COUNT/UNIT`` or ``COUNT/NUMBER UNIT`` (``10/5minutes``, ``1/2.5 s``), ``per``
    instead of ``/``; units second, minute, hour, day, singular or plural, and the abbreviations
    s, sec, min, h, hr, d. Raises ValueError naming the text otherwise.
    """
    match = _RATE.match(text)
    if match is None:
        raise ValueError(
            f"{text!r} is not a rate; write it as COUNT/UNIT, e.g. '30/minute', '2000/day' or '10/5minutes'"
        )
    unit = match["unit"].lower()
    if unit not in _UNITS:
        raise ValueError(
            f"{text!r}: unknown time unit {match['unit']!r}; use second, minute, hour or day "
            "(or s, min, h, d)"
        )
    count = int(match["count"])
    number = float(match["number"]) if match["number"] else 1.0
    if count < 1:
        raise ValueError(f"{text!r}: the count must be at least 1")
    if number <= 0:
        raise ValueError(f"{text!r}: the period must be longer than zero")
    return Rate(count, number * _UNITS[unit], text.strip())

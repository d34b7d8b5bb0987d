"""Shared fixtures. SMTP server fixtures live in smtpfixtures.py (aiosmtpd on 127.0.0.1)."""

from __future__ import annotations

from smtpfixtures import *  # noqa: F403

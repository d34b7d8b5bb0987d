"""Shared fixtures: ``office`` (an example workspace as the current folder); the SMTP server
fixtures live in smtpfixtures.py (aiosmtpd on 127.0.0.1), the PostgreSQL ones in pgfixtures.py
(a throwaway cluster)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import make_workspace
from pgfixtures import *  # noqa: F403
from smtpfixtures import *  # noqa: F403


@pytest.fixture
def office(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh example workspace (``reldist init``), made the current folder for the test."""
    root = make_workspace(tmp_path / "office")
    monkeypatch.chdir(root)
    yield root

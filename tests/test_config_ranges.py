"""Every numeric setting of reldist.toml is checked in one place: a value out of range is an error
naming the key and the accepted range, never a traceback later (``[smtp] retries = 0``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import RELEASE_ID, run
from reldist.config import RANGES, load_config
from reldist.errors import ConfigError

MINIMAL = '[sender]\nname = "ЭкоМузей"\naddress = "press@ecomuseum.example"\n'
SMTP = '[smtp]\nhost = "127.0.0.1"\nsecurity = "none"\n'


@pytest.mark.parametrize(
    ("table", "line", "message"),
    [
        (SMTP, "retries = 0", "'smtp.retries' = 0 is out of range: it must be from 1 to 20"),
        (SMTP, "retries = -3", "'smtp.retries' = -3 is out of range"),
        (SMTP, "port = 0", "'smtp.port' = 0 is out of range: it must be from 1 to 65535"),
        (SMTP, "port = 70000", "'smtp.port' = 70000 is out of range"),
        (SMTP, "connections = 0", "'smtp.connections' = 0 is out of range: it must be from 1 to 64"),
        (SMTP, "messages_per_connection = 0", "'smtp.messages_per_connection' = 0 is out of range"),
        (
            SMTP,
            "timeout = 0",
            "'smtp.timeout' = 0 seconds is out of range: it must be from 1 to 3600 seconds",
        ),
        (SMTP, "timeout = inf", "'smtp.timeout' = inf seconds is out of range"),
        (SMTP, "timeout = nan", "'smtp.timeout' = nan seconds is out of range"),
        (SMTP, "backoff = -1", "'smtp.backoff' = -1 seconds is out of range: it must be from 0 to 3600"),
        ("[dispatch]\n", 'max_late = "0s"', "'dispatch.max_late' = 0 seconds is out of range"),
        (
            "[dispatch]\n",
            'embargo_lead = "400d"',
            "'dispatch.embargo_lead' = 34560000 seconds is out of range",
        ),
        ("[check]\n", 'max_html = "10"', "'check.max_html' = 10 bytes is out of range"),
        (
            "[check]\n",
            'max_attachments = "2GB"',
            "'check.max_attachments' = 2147483648 bytes is out of range",
        ),
    ],
)
def test_a_number_out_of_range_names_the_key_and_the_range(
    tmp_path: Path, table: str, line: str, message: str
) -> None:
    path = tmp_path / "reldist.toml"
    path.write_text(MINIMAL + table + line + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"reldist.toml: {message}" or str(info.value).startswith(
        f"reldist.toml: {message}"
    )


def test_every_range_is_used_and_the_defaults_are_in_range(tmp_path: Path) -> None:
    path = tmp_path / "reldist.toml"
    path.write_text(MINIMAL + SMTP, encoding="utf-8")
    config = load_config(path)  # the defaults pass
    assert config.smtp is not None and config.retry.attempts == 3
    assert {key.split(".")[0] for key in RANGES} == {"smtp", "dispatch", "check"}
    for key, (low, high, _) in RANGES.items():
        assert low <= high, key


def test_retries_zero_is_an_error_from_the_command_not_a_traceback(office: Path) -> None:
    config = office / "reldist.toml"
    config.write_text(
        config.read_text(encoding="utf-8")
        + '\n[smtp]\nhost = "127.0.0.1"\nport = 1\nsecurity = "none"\nretries = 0\n',
        encoding="utf-8",
    )
    code, out = run("send", RELEASE_ID, "--yes")
    assert code == 1
    assert "reldist: error: reldist.toml: 'smtp.retries' = 0 is out of range: it must be from 1 to 20" in out
    assert "Traceback" not in out

"""The ``[inbox]`` table of a real reldist.toml: each refusal names the file as its place and the
key in its message."""

from __future__ import annotations

from pathlib import Path

import pytest

from reldist.config import load_config
from reldist.errors import ConfigError

SENDER = '[sender]\nname = "Press office"\naddress = "press@example.org"\n'


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('port = 993\nusername = "u"\npassword_env = "P"\n', "missing 'inbox.host'"),
        ('host = "h"\nsecurity = "ssl"\nusername = "u"\npassword_env = "P"\n', "'inbox.security' must be"),
        ('host = "h"\nauth = "cram"\nusername = "u"\npassword_env = "P"\n', "'inbox.auth' must be"),
        ('host = "h"\nusername = "u"\n', "[inbox] needs 'username' and one of"),
        (
            'host = "h"\nusername = "u"\npassword_env = "P"\nsoft_bounce_limit = 0\n',
            "'inbox.soft_bounce_limit'",
        ),
    ],
)
def test_inbox_errors_carry_the_file_as_their_place(tmp_path: Path, table: str, message: str) -> None:
    path = tmp_path / "reldist.toml"
    path.write_text(SENDER + "[inbox]\n" + table, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.place == "reldist.toml"
    assert caught.value.message.startswith(message)
    assert str(caught.value) == f"reldist.toml: {caught.value.message}"

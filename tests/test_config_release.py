"""reldist.toml and release.toml: what loads, and errors that name the key or the file and line."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given
from hypothesis import strategies as st

from helpers import RELEASE_ID, make_workspace
from reldist.config import find_config, load_config
from reldist.errors import ConfigError, ReleaseError
from reldist.markup import convert
from reldist.release import find_release, load_release
from reldist.values import _PLAIN_ADDRESS, parse_duration, parse_size, plain_address


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


MINIMAL = '[sender]\nname = "ЭкоМузей"\naddress = "press@ecomuseum.example"\n'


def test_minimal_config_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path / "reldist.toml", MINIMAL))
    assert config.sender.name == "ЭкоМузей"
    assert config.transport_name == "outbox"
    assert config.ledger_path == tmp_path / "reldist.db"
    assert config.list_id == "press.ecomuseum.example"
    assert config.sender.envelope_sender == "press@ecomuseum.example"


def test_config_found_in_parents(tmp_path: Path) -> None:
    write(tmp_path / "reldist.toml", MINIMAL)
    (tmp_path / "a" / "b").mkdir(parents=True)
    assert find_config(tmp_path / "a" / "b") == tmp_path / "reldist.toml"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("nmae = 1\n", "unknown key 'nmae'"),
        ('timezone = "Mars/Olympus"\n', "'timezone' 'Mars/Olympus' is not a known time zone"),
        ('[smtp]\nhost = "x"\nport = "587"\n', "'smtp.port' must be a whole number"),
        ('[smtp]\nhost = "x"\npassword = "hunter2"\n', "unknown key 'smtp.password'"),
        ('[smtp]\nhost = "x"\nsecurity = "ssl"\n', "'smtp.security' must be"),
        ('[smtp]\nhost = "x"\nrate = "thirty a minute"\n', "'smtp.rate'"),
        ('[dispatch]\nmax_late = "soon"\n', "'dispatch.max_late'"),
        # a line uncommented under a table header that is still commented out
        ('# [smtp]\nrate = "30/minute"\n', "'rate' belongs in the [smtp] table: is its [smtp] line still"),
        ('host = "smtp.example.org"\n', "'host' belongs in the [smtp] table"),
        # a key two tables have gets the nearest spelling, not a guess at the table
        (
            "[dispatch]\nkey_file = 'k'\n",
            "unknown key 'dispatch.key_file'; did you mean 'dispatch.log_file'?",
        ),
    ],
)
def test_config_errors_name_the_key(tmp_path: Path, extra: str, message: str) -> None:
    text = MINIMAL + extra if extra.startswith("[") else extra + MINIMAL
    with pytest.raises(ConfigError, match="reldist.toml: .*") as info:
        load_config(write(tmp_path / "reldist.toml", text))
    assert message in str(info.value)
    assert "hunter2" not in str(info.value)


def test_config_syntax_error_has_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"reldist.toml: .*line 4"):
        load_config(write(tmp_path / "reldist.toml", MINIMAL + "oops =\n"))


def test_bad_sender_address(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'sender.address' 'press@@x' is not an email address"):
        load_config(write(tmp_path / "reldist.toml", '[sender]\nname = "x"\naddress = "press@@x"\n'))


def _validated(text: str) -> str | None:
    try:
        return validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError:
        return None


@given(st.from_regex(_PLAIN_ADDRESS, fullmatch=True) | st.emails())
def test_plain_addresses_are_what_email_validator_returns(text: str) -> None:
    # The shortcut that spares loading email-validator must never accept what it would refuse
    # nor keep what it would change.
    if plain_address(text):
        assert _validated(text) == text


@pytest.mark.parametrize(
    "text",
    ["press@ecomuseum.kz", "a.b+c@mail.example.org", "x_y@sub-domain.example.com", "ivan@mail.kz"],
)
def test_plain_address_shortcut_takes_common_addresses(text: str) -> None:
    assert plain_address(text) and _validated(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "Press@Ecomuseum.KZ",  # email-validator lowercases the domain
        "ivan@@mail.kz",
        "a..b@mail.kz",
        ".a@mail.kz",
        "a@localhost",
        "a@mail.test",
        "a@mail.local",
        "a@xn--80a.kz",
        "a@-mail.kz",
        "a@mail.123",
        "пресса@музей.kz",
        "a@kz",
        "a" * 60 + "@mail.kz",
    ],
)
def test_plain_address_shortcut_leaves_the_rest_to_email_validator(text: str) -> None:
    assert not plain_address(text)


def test_smtp_table_switches_transport(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path / "reldist.toml",
            MINIMAL
            + '[smtp]\nhost = "smtp.example.org"\nsecurity = "tls"\nrate = ["30/minute", "2000/day"]\n',
        )
    )
    assert config.transport_name == "smtp"
    assert config.smtp is not None and config.smtp.port == 465
    assert [r.count for r in config.rates] == [30, 2000]


def test_durations_and_sizes() -> None:
    assert parse_duration("24h", "x") == 86400
    assert parse_duration("1h30m", "x") == 5400
    assert parse_size("5MB", "x") == 5 * 1024 * 1024
    assert parse_size("102KB", "x") == 102 * 1024


# -- release.toml ---------------------------------------------------------------------------


@pytest.fixture
def office(tmp_path: Path) -> Path:
    return make_workspace(tmp_path / "office")


def release_toml(office: Path) -> Path:
    return office / "releases" / RELEASE_ID / "release.toml"


def test_example_release_loads(office: Path) -> None:
    release = load_release(find_release(RELEASE_ID, office), workspace=office)
    assert release.id == RELEASE_ID
    assert release.languages == ("ru", "en", "kk")
    assert release.versions["ru"].body.title.startswith("Проект Европейского Союза")
    assert release.versions["en"].body.title
    assert "<h1>" not in release.versions["ru"].body.html  # the title is taken out
    assert "https://" in " ".join(release.versions["en"].body.links)


def test_release_missing_language_file(office: Path) -> None:
    (office / "releases" / RELEASE_ID / "en.md").unlink()
    with pytest.raises(
        ReleaseError,
        match=rf"releases/{RELEASE_ID}/release.toml: 'en.file': releases/{RELEASE_ID}/en.md does not exist",
    ):
        load_release(office / "releases" / RELEASE_ID, workspace=office)


def test_release_missing_subject(office: Path) -> None:
    toml = release_toml(office)
    toml.write_text(
        toml.read_text(encoding="utf-8").replace('subject = "EU project', 'title = "EU project'),
        encoding="utf-8",
    )
    with pytest.raises(ReleaseError, match=r"unknown key 'en.title'"):
        load_release(toml.parent, workspace=office)


def test_release_naive_send_at_is_an_error(office: Path) -> None:
    toml = release_toml(office)
    toml.write_text("send_at = 2026-11-28T10:00:00\n" + toml.read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(ReleaseError, match=r"'send_at' = 2026-11-28T10:00:00 has no time zone"):
        load_release(toml.parent, workspace=office)


def test_release_zone_name_in_a_string(office: Path) -> None:
    toml = release_toml(office)
    toml.write_text(
        'send_at = "2026-11-28 10:00 Asia/Almaty"\nembargo = 2026-11-28T12:00:00+05:00\n'
        + toml.read_text(encoding="utf-8"),
        encoding="utf-8",
    )
    release = load_release(toml.parent, workspace=office)
    assert release.send_at is not None and release.send_at.utcoffset() == dt.timedelta(hours=5)
    assert release.embargo == dt.datetime(2026, 11, 28, 7, 0, tzinfo=dt.UTC)


def test_release_not_utf8_names_line(office: Path) -> None:
    md = office / "releases" / RELEASE_ID / "ru.md"
    md.write_bytes("# Заголовок\n\nтекст\n".encode() + "Третья строка в cp1251".encode("cp1251"))
    with pytest.raises(ReleaseError, match=rf"releases/{RELEASE_ID}/ru.md:4: not UTF-8"):
        load_release(md.parent, workspace=office)


def test_release_toml_syntax_error(office: Path) -> None:
    toml = release_toml(office)
    toml.write_text('languages = ["ru", \n', encoding="utf-8")
    with pytest.raises(ReleaseError, match=r"release.toml: Invalid value"):
        load_release(toml.parent, workspace=office)


# -- Markdown to text -----------------------------------------------------------------------


def test_plain_text_is_readable() -> None:
    body = convert(
        "# Заголовок\n\n**КАРАГАНДА** — Сегодня [ЭкоМузей](https://ecomuseum.kz) подписал "
        "меморандум с управлением природных ресурсов Карагандинской области о сотрудничестве.\n\n"
        "> «Цитата», — сказал он.\n\n## Справка\n\n- один\n- [a@b.example](mailto:a@b.example)\n\n"
        "1. first\n2. second\n\nAddress line one\\\nline two\n"
    )
    assert body.title == "Заголовок"
    assert "КАРАГАНДА — Сегодня ЭкоМузей <https://ecomuseum.kz> подписал" in body.text
    assert "> «Цитата»,\xa0— сказал он." in body.text  # a dash never starts a line
    assert "Справка\n-------" in body.text
    assert "- один\n- a@b.example" in body.text
    assert "1. first\n2. second" in body.text
    assert "Address line one\nline two" in body.text
    assert all(len(line) <= 72 for line in body.text.splitlines())
    assert "**" not in body.text and "<" not in body.text.replace("<https://ecomuseum.kz>", "")

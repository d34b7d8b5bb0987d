"""Errors carry their place as a field; the JSON of a failed check takes it from there."""

from __future__ import annotations

from reldist.errors import ContactsError, ReldistError, TransportError
from reldist.findings import failure


def test_an_error_carries_its_place_apart_from_its_message() -> None:
    exc = ContactsError("'ivan@@mail.kz' is not an email address", place="contacts/regional.csv:17")
    assert str(exc) == "contacts/regional.csv:17: 'ivan@@mail.kz' is not an email address"
    assert (exc.place, exc.message) == ("contacts/regional.csv:17", "'ivan@@mail.kz' is not an email address")
    (finding,) = failure("r", exc)["findings"]
    assert finding["place"] == "contacts/regional.csv:17"
    assert finding["message"] == "'ivan@@mail.kz' is not an email address"
    assert finding["code"] == "ContactsError"


def test_an_error_without_a_place_is_not_taken_apart() -> None:
    exc = ReldistError("smtp.example.org:587: cannot connect: refused")
    assert exc.place == ""
    (finding,) = failure("r", exc)["findings"]
    assert (finding["place"], finding["message"]) == ("", "smtp.example.org:587: cannot connect: refused")


def test_os_error_subclasses_keep_their_text_and_exit_code() -> None:
    exc = TransportError("cannot connect", place="smtp.example.org:587")
    assert isinstance(exc, ConnectionError)
    assert str(exc) == "smtp.example.org:587: cannot connect"
    assert failure("r", exc)["exit_code"] == 4

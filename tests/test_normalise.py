"""How people type is undone before rules and model read a comment."""

from __future__ import annotations

import pytest

from handlers.features import tokens
from handlers.normalise import MAX_CHARS, normalise


@pytest.mark.parametrize(
    ("typed", "plain"),
    [
        ("You are a FUCKIN idiot", "you are a fucking idiot"),
        ("@someone you are a fukin idiot", "you are a fuking idiot"),
        ("I h4te you, sh!t teacher", "i hate you, shit teacher"),
        ("k i l l  y o u r s e l f", "kill yourself"),
        ("f.u.c.k off", "fuck off"),
        ("sooooo stupiddddd", "soo stupidd"),
        ("my bf is 24 cos im nearly 14", "my boyfriend is 24 because im nearly 14"),
        ("I’m 14yo", "im 14 yo"),
        ("see https://bit.ly/x and www.spam.biz", "see xurl and xurl"),
    ],
)
def test_spelling_variants_meet(typed: str, plain: str) -> None:
    assert normalise(typed) == plain


def test_numbers_and_school_words_survive() -> None:
    assert normalise("Year 5 got 10/10, room 14") == "year 5 got 10/10, room 14"
    assert normalise("my cousin in the cabin") == "my cousin in the cabin"


def test_emoji_are_kept_as_signal() -> None:
    assert normalise("kys🔪🏻") == "kys 🔪"
    assert "w:🔪" in tokens("i want to 🔪 them")


def test_fukin_and_fucking_share_features() -> None:
    a, b = set(tokens("fukin idiot")), set(tokens("fucking idiot"))
    assert a == b


def test_text_is_capped_for_the_model() -> None:
    assert len(normalise("a" * 10 + " word" * 1_000_000)) <= MAX_CHARS

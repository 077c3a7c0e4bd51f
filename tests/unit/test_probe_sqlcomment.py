"""sqlcommenter comments: encoded, sorted, appended, never doubled."""

from __future__ import annotations

from deskprof.probe.sqlcomment import add_comment, format_comment


def test_format_sorts_encodes_and_leaves_out_empty_values():
    comment = format_comment({"route": "/tickets/{id}", "request_id": "ab-1", "empty": ""})
    assert comment == "/*request_id='ab-1',route='%2Ftickets%2F%7Bid%7D'*/"
    assert format_comment({"route": ""}) == ""


def test_quote_in_a_value_cannot_close_the_string():
    assert "'" not in format_comment({"k": "it's"}).removeprefix("/*k='").removesuffix("'*/")


def test_add_comment_before_a_trailing_semicolon():
    assert add_comment("SELECT 1;", {"a": "b"}) == "SELECT 1 /*a='b'*/;"
    assert add_comment("SELECT 1", {"a": "b"}) == "SELECT 1 /*a='b'*/"


def test_statement_with_a_comment_is_left_alone():
    assert add_comment("SELECT /* hint */ 1", {"a": "b"}) == "SELECT /* hint */ 1"


def test_percent_doubled_for_format_style_drivers():
    sent = add_comment("SELECT %(x)s", {"route": "/a"}, escape_percent=True)
    assert sent == "SELECT %(x)s /*route='%%2Fa'*/"

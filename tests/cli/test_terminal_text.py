"""#17 item 21: text from data reaches the terminal as visible escapes, in error lines as in tables."""

from __future__ import annotations


from resnet_hub.cli.text import plain, visible
from helpers.cli import run_cli

HOSTILE = "my\x1b[2J\x1b[31mresnet\r\u202eevil"


def test_an_error_that_quotes_a_hostile_name_shows_its_control_characters_as_escapes():
    done = run_cli("info", HOSTILE)
    assert done.returncode == 1
    assert "\x1b" not in done.stderr and "\r" not in done.stderr and "\u202e" not in done.stderr
    assert "\\x1b[2J" in done.stderr and "\\u202e" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_plain_and_visible_keep_ordinary_text_and_escape_controls():
    assert plain("cat [dog]") == "cat \\[dog]"  # rich markup escaped, text kept
    assert visible("line one\nline two\x07", keep="\n") == "line one\nline two\\x07"
    assert visible("a\tb\rc") == "a\\tb\\rc"

"""Data is shown as written in a terminal: rich's emoji codes (":x:") and markup ("[b]") in a
name are text, in tables and in the CLI's own lines."""

from __future__ import annotations

import io

import pytest

from loanwatch.output import Format, render
from loanwatch.reports import Table

pytestmark = pytest.mark.unit


def test_emoji_codes_and_markup_in_data_are_shown_as_written():
    out = io.StringIO()
    render(Table(["client_name", "note"], [[":x: Ana", "[b]bold[/b] :warning:"]]), Format.table, out=out)
    text = out.getvalue()
    assert ":x: Ana" in text and "[b]bold[/b] :warning:" in text
    assert "\u274c" not in text and "\u26a0" not in text  # the emoji rich would have put there


def test_the_clis_consoles_print_emoji_codes_as_text():
    from loanwatch import cli

    for console in (cli.console, cli.err):
        with console.capture() as captured:
            console.print(":x: literal")
        assert captured.get().strip() == ":x: literal"

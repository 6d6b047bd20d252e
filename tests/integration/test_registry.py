"""The report registry drives the CLI, the HTML report and the docs: each of them is checked
against it here (the dashboard's pages in tests/e2e/test_dashboard.py)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from decimal import Decimal
from pathlib import Path

import pytest

from loanwatch.reports import registry
from tests.conftest import cli

ROOT = Path(__file__).resolve().parents[2]
ENTRIES = [pytest.param(r, id=r.key) for r in registry.REPORTS]


def _fits(column: registry.Column, value) -> bool:
    if value is None:
        return True
    return {
        "count": lambda v: isinstance(v, int) and v >= 0,
        "money": lambda v: isinstance(v, Decimal),
        # a share is between 0 and 1; one declared signed (a difference of two shares) between -1 and 1; one declared
        # above_one (the recovery rate) 0 or more
        "share": lambda v: isinstance(v, Decimal) and (-1 if column.signed else 0) <= v and (column.above_one or v <= 1),
        "days": lambda v: isinstance(v, int) and v >= 0,
        "date": lambda v: isinstance(v, dt.date),
        "month": lambda v: isinstance(v, str) and re.fullmatch(r"\d{4}-\d{2}", v) is not None,
        # a whole number; the transition matrix's weight alone is a decimal (principal, with pd_weight = balance)
        "number": lambda v: isinstance(v, int) or (column.name == "weight" and isinstance(v, Decimal) and v.is_finite()),
        "text": lambda v: isinstance(v, str),
    }[column.kind](value)


@pytest.mark.parametrize("report", ENTRIES)
def test_every_report_returns_its_declared_columns_of_their_kind(golden_con, report):
    table = report.run(golden_con)
    assert table.columns == report.column_names
    assert table.rows, f"{report.key}: no rows on the golden fixture"
    for row in table.rows:
        for column, value in zip(report.columns, row):
            assert _fits(column, value), (report.key, column.name, column.kind, value)


def test_names_and_columns_are_declared_once():
    assert len({r.key for r in registry.REPORTS}) == len(registry.REPORTS)
    for report in registry.REPORTS:
        assert len(set(report.column_names)) == len(report.columns), report.key
        for chart in report.charts:
            for name in chart.y + ((chart.x,) if isinstance(chart.x, str) else tuple(chart.x or ())):
                assert name in report.column_names, (report.key, chart.key, name)
    for name in registry.KPIS:
        registry.get("summary").column(name)
    for page in registry.PAGES:  # a page's reports read one kind of data: its page says what to load when absent
        assert len({r.kind.data for r in registry.on_page(page)}) <= 1, page
    for report in registry.REPORTS:  # a part's options are fields of the report's filter
        fields = {f.name for f in dataclasses.fields(report.kind.filter)}
        assert all(set(part.options) <= fields for part in report.parts), report.key
    for report in registry.REPORTS:  # its own options: declared once, with help, choices or bounds; a part fixes declared ones
        assert len({p.name for p in report.params}) == len(report.params), report.key
        for param in report.params:
            assert param.help and bool(param.choices) != (param.bounds is not None), (report.key, param.name)
            assert param.default is None or param.default in param.choices or (
                param.bounds and param.bounds[0] <= param.default <= param.bounds[1]), (report.key, param.name)
        for part in report.parts:
            assert all(report.param(name) and value in report.param(name).choices for name, value in part.params.items()), (
                report.key, part.key)
    with pytest.raises(ValueError, match="unknown kind"):
        registry.Column("x", "percent", "X")
    with pytest.raises(ValueError, match="only a share is declared signed or above_one"):
        registry.Column("x", "money", "X", signed=True)
    with pytest.raises(ValueError, match="only a share is declared signed or above_one"):
        registry.Column("x", "number", "X", above_one=True)
    for name in registry.names():  # the entries of a name are chosen by one option
        assert len({r.view_option for r in registry.by_name(name)}) == 1, name


@pytest.mark.parametrize("report", ENTRIES)
def test_the_cli_runs_every_report_with_the_registry_columns(golden, report):
    args = ["report", report.name, "-f", "json", *report.view_args]
    result = cli(*args, home=golden.home)
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert rows and list(rows[0]) == report.column_names
    help_text = " ".join(cli("report", report.name, "--help").stdout.split())
    assert " ".join(report.help.split()[:4]) in help_text or report.title.lower() in help_text
    assert ("--as-of" in help_text) == any(r.as_of for r in registry.by_name(report.name))


def test_a_report_s_own_options_are_its_command_s(golden):
    """registry.Param: `--by`, `--method`, `--months` with their help, their choices or bounds and
    default; a value outside them is a usage error (exit 2) naming the option; the book's reports
    take --currency and no loan filter."""
    import typer.main

    from loanwatch.cli import app

    group = typer.main.get_command(app).commands["report"]
    for report in registry.REPORTS:
        options = {o for p in group.commands[report.name].params for o in p.opts}
        assert {p.option for p in report.params} <= options, report.key
        if report.filters == "book":
            assert "--currency" in options and "--product" not in options and "--min-amount" not in options, report.key
    shown = " ".join(cli("report", "provisions", "--help", env={"COLUMNS": "200"}).stdout.split())
    assert "--by <stage|product|bucket>" in shown and "--method <ifrs9|cecl>" in shown and "[default: stage]" in shown
    assert "[default: 6; 1<=x<=600]" in " ".join(cli("report", "forecast", "--help", env={"COLUMNS": "200"}).stdout.split())
    for args, option in ((["provisions", "--by", "region"], "--by"), (["provisions", "--method", "ecl"], "--method"),
                         (["forecast", "--months", "0"], "--months"), (["forecast", "--months", "601"], "--months"),
                         (["forecast", "--months", "six"], "--months")):
        result = cli("report", *args, home=golden.home)
        assert result.exit_code == 2, (args, result.stdout)
        assert f"Invalid value for '{option}'" in result.stderr and "Usage: " in result.stderr, args
    for args in (["transition-matrix", "--product", "cash"], ["forecast", "--as-of", "2024-06-30"],
                 ["forecast-backtest", "--months", "3"]):
        result = cli("report", *args, home=golden.home)
        assert result.exit_code == 2 and f"No such option: {args[1]}" in result.stderr, args
    with pytest.raises(TypeError, match="report forecast: no option by"):
        registry.get("forecast").run(None, by="stage")


def test_a_view_that_does_not_exist_is_a_usage_error(golden):
    result = cli("report", "products", "--view", "colours", home=golden.home)
    assert result.exit_code == 2
    assert "use one of terms, merchants" in result.stderr


def test_the_cli_has_exactly_the_registry_reports_and_html():
    import typer.main

    from loanwatch.cli import app

    group = typer.main.get_command(app).commands["report"]
    assert set(group.commands) == set(registry.names()) | {"html"}


def test_the_docs_table_is_the_registry(tmp_path):
    docs = (ROOT / "docs" / "reports.md").read_text()
    assert registry.docs_table() in docs, "docs/reports.md differs from the report registry: run `make docs`"
    for report in registry.REPORTS:  # and the table says what a reader needs
        verb = f"`{report.verb}`"
        [line] = [ln for ln in docs.splitlines() if ln.startswith(f"| {verb} |")]
        assert report.definition and all(f"`{c.name}`" in line for c in report.columns)
    # make docs rewrites a stale table, and nothing else
    stale = tmp_path / "reports.md"
    stale.write_text(docs.replace("| `loans` | loan |", "| `loans` | a loan |"))
    assert registry.write_docs(str(stale)) is True
    assert stale.read_text() == docs
    assert registry.write_docs(str(stale)) is False


def test_the_html_report_has_every_registry_section(golden, tmp_path):
    pytest.importorskip("plotly")
    out = tmp_path / "r.html"
    assert cli("report", "html", "--out", str(out), home=golden.home).exit_code == 0
    text = out.read_text()
    for report in registry.REPORTS:
        if report.html:
            assert f"<h2>{report.title}</h2>" in text
            for chart in report.charts:
                assert f'id="{chart.key}"' in text, chart.key
    for name in registry.KPIS:
        assert registry.get("summary").column(name).title in text
    # every report with a page reaches it (the summary as its cards): write-offs, the call centre's, the ledger's
    assert all(r.html for r in registry.REPORTS if r.page is not None and r.key != "summary")
    for title in ("Write-offs", "Calls", "Contacts", "Merchant balances", "Lowest balances"):
        assert f"<h2>{title}</h2>" in text, title
    sections = re.findall(r"<h2>([^<]+)</h2>", text)[1:]  # (after the overview's cards) page by page
    pages = [next(r.page for r in registry.REPORTS if r.html and r.title == t) for t in sections]
    assert pages == sorted(pages, key=list(registry.PAGES).index)


def test_the_html_report_of_loans_only_leaves_out_the_call_centre_and_the_ledger(tmp_path):
    pytest.importorskip("plotly")
    import shutil

    from tests.conftest import GOLDEN, build_home

    raw = tmp_path / "raw"
    raw.mkdir()
    for entity in ("clients", "loans", "payments"):
        shutil.copy(GOLDEN / f"{entity}.jsonl", raw)
    home = build_home(tmp_path / "home", raw).home
    out = tmp_path / "r.html"
    assert cli("report", "html", "--out", str(out), home=home).exit_code == 0
    text = out.read_text()
    assert "<h2>Write-offs</h2>" in text and "<h2>Calls</h2>" not in text and "<h2>Lowest balances</h2>" not in text


def test_one_function_prepares_the_view_of_every_kind_of_filter(golden_con):
    """reports.prepare: the loans' currency and as-of date; the calls or ledger days selected,
    from the first to the last day held unless chosen."""
    from loanwatch.reports import LoanFilter, prepare
    from loanwatch.reports.calls import CallFilter, ContactFilter
    from loanwatch.reports.ledger import LedgerFilter

    f, view = prepare(golden_con, registry.FILTERS["loans"], LoanFilter(min_amount=Decimal(500)), as_of=dt.date(2024, 6, 30))
    assert (view.as_of, view.currency, view.left_out) == (None, "USD", [])  # the data date: no as-of of its own
    assert view.describe() == "as of 2024-06-30 · money in USD · filters: amount 500.00 to any"
    _, view = prepare(golden_con, registry.FILTERS["calls"], CallFilter(period="week"))
    assert view.describe() == "calls from 2024-06-30 to 2024-06-30 (UTC), by week"
    _, view = prepare(golden_con, registry.FILTERS["contacts"], ContactFilter(date_to=dt.date(2024, 7, 31)))
    assert view.describe() == "calls about loans from 2024-06-30 to 2024-07-31"
    opening = LedgerFilter.opening(golden_con)
    assert opening == LedgerFilter("M1")
    _, view = prepare(golden_con, registry.FILTERS["ledger"], opening)
    assert view.describe() == "merchant M1 · <i>Tienda</i> & Co, 2024-01-31 to 2024-02-07"

"""The semantic layer (docs/architecture.md, "Semantic layer"): the headline figures declared once
as dbt semantic models and metrics on the published marts (models/semantic/), queried with
MetricFlow's `mf`, are the reports' figures.

`mf` runs as docs/architecture.md says: in a work folder outside the package, holding a copy of
dbt_project.yml, a profile that attaches the serving snapshot read-only as `published` (the home's
read-only profile, write_profile(command="test"), with the main database in memory) and
target/semantic_manifest.json from `dbt parse`. MetricFlow returns a ratio unrounded (a double);
rounded half-up to 6 decimals it is the report's figure.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
import uuid
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

from loanwatch.transform import PROJECT_DIR, write_profile
from tests.conftest import assert_no_traceback, cli

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
MF, DBT = BIN / "mf", BIN / "dbt"
SIX = Decimal("0.000001")
CENTS = Decimal("0.01")


def _artefacts(folder: Path) -> dict[str, int]:
    """What dbt or mf leaves in a project folder they run in (target/, logs/), with mtimes."""
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns
            for name in ("target", "logs") for p in (folder / name).rglob("*") if p.is_file()}


def _run(cmd: list, work: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert_no_traceback(proc.stdout, proc.stderr, what=" ".join(map(str, cmd[:2])))
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def semantic(small_home, tmp_path_factory):
    """`mf query` on small_home: a function that runs one query in a MetricFlow work folder and
    returns its rows (its CSV, at full precision)."""
    if not MF.exists():
        pytest.skip(f"{MF} is missing: pip install dbt-metricflow")
    package_before = _artefacts(PROJECT_DIR)
    work = tmp_path_factory.mktemp("semantic")
    # the home's read-only profile, with the main database in memory: readers never open the
    # warehouse (docs/architecture.md, "Concurrency"), and every model mf reads is in the snapshot
    profile = json.loads((write_profile(small_home, command="test") / "profiles.yml").read_text())
    profile["loanwatch"]["outputs"]["duckdb"]["path"] = ":memory:"
    (work / "profiles.yml").write_text(json.dumps(profile, indent=2))
    shutil.copy(PROJECT_DIR / "dbt_project.yml", work / "dbt_project.yml")
    env = {**os.environ, "DBT_PROFILES_DIR": str(work), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    _run([DBT, "parse", "--quiet", "--project-dir", PROJECT_DIR, "--target-path", work / "target",
          "--log-path", work / "logs"], work, env)
    assert (work / "target" / "semantic_manifest.json").is_file()

    def query(metrics: list[str], group_by: str | None, *extra: str) -> list[dict[str, str]]:
        out = work / f"{uuid.uuid4().hex}.csv"
        grouped = ["--group-by", group_by, "--order", group_by] if group_by else []
        _run([MF, "query", "--metrics", ",".join(metrics), *grouped, "--csv", out, "--quiet", *extra], work, env)
        with out.open(newline="") as f:
            return list(csv.DictReader(f))

    yield query
    # the package folder stays as it is: parse and mf wrote only into the work folder
    assert _artefacts(PROJECT_DIR) == package_before


def report(home: Path, *args: str) -> list[dict[str, str]]:
    result = cli("report", *args, "--format", "csv", home=home)
    assert result.exit_code == 0, result.stderr
    return list(csv.DictReader(io.StringIO(result.stdout)))


def share(value: str | None) -> Decimal | None:
    """A ratio as the reports show it: 6 decimals, rounded half-up; None when empty."""
    return None if value in (None, "") else Decimal(value).quantize(SIX, ROUND_HALF_UP)


def money(value: str | None) -> Decimal | None:
    return None if value in (None, "") else Decimal(value).quantize(CENTS, ROUND_HALF_UP)


def count(value: str | None) -> int | None:
    return None if value in (None, "") else int(Decimal(value))


def by_month(rows: list[dict[str, str]], key: str = "metric_time__month") -> dict[str, dict[str, str]]:
    """mf's rows by month, YYYY-MM (metric_time__month is the month's first day)."""
    months = {row[key][:7]: row for row in rows}
    assert len(months) == len(rows), f"{key} repeats a month"
    return months


def test_overdue_share_by_month_is_report_overdue_monthly(semantic, small_home):
    """The issue's example: `mf query --metrics overdue_share --group-by metric_time__month` is
    `report overdue-monthly`, every month, count and amount versions, to 6 decimals."""
    expected = report(small_home.home, "overdue-monthly")
    assert len(expected) > 12
    got = by_month(semantic(["overdue_share", "overdue_share_amount", "loans_active", "loans_overdue",
                             "principal_outstanding", "principal_overdue"], "metric_time__month"))
    for row in expected:
        month = row["month"]
        if int(row["loans_active"]) == 0:  # no snapshot row in the month: mf has no row for it
            assert share(got.get(month, {}).get("overdue_share")) is None, month
            continue
        mf = got[month]
        assert share(mf["overdue_share"]) == share(row["overdue_share"]), month
        assert share(mf["overdue_share_amount"]) == share(row["overdue_amount_share"]), month
        assert count(mf["loans_active"]) == int(row["loans_active"]), month
        assert count(mf["loans_overdue"]) == int(row["loans_overdue"]), month
        assert money(mf["principal_outstanding"]) == money(row["principal_outstanding"]), month
        assert money(mf["principal_overdue"]) == money(row["principal_overdue"]), month
    assert set(got) <= {row["month"] for row in expected}
    assert any(share(row["overdue_share"]) for row in expected)  # not a portfolio of zeros


def test_par_principal_disbursed_collection_and_connect_rate_are_the_reports(semantic, small_home):
    """One query of every other headline metric by month (metrics of four semantic models joined
    on metric_time) against `report par`, `disbursed`, `revenue` and `calls --by all`."""
    got = by_month(semantic(["principal_outstanding", "par30", "par60", "par90", "disbursed_loans",
                             "disbursed_amount", "collection_efficiency", "instalments_due_amount",
                             "instalments_collected_amount", "connect_rate", "calls", "connected_calls"],
                            "metric_time__month"))
    empty: dict[str, str] = {}

    par = report(small_home.home, "par")
    for row in par:
        mf = got.get(row["month"], empty)
        assert (money(mf.get("principal_outstanding")) or Decimal("0.00")) == money(row["principal_outstanding"]), row["month"]
        for x in ("par30", "par60", "par90"):
            assert share(mf.get(x)) == share(row[x]), (row["month"], x)
    assert any(share(row["par30"]) for row in par)

    disbursed = report(small_home.home, "disbursed")
    for row in disbursed:
        mf = got[row["month"]]
        assert count(mf["disbursed_loans"]) == int(row["loans"]), row["month"]
        assert money(mf["disbursed_amount"]) == money(row["amount"]), row["month"]
    assert sum(int(r["loans"]) for r in disbursed) == sum(count(r["disbursed_loans"]) or 0 for r in got.values())

    revenue = report(small_home.home, "revenue")
    for row in revenue:
        mf = got.get(row["month"], empty)
        # the report counts the instalments due by the data date, also in the data date's month
        assert share(mf.get("collection_efficiency")) == share(row["collection_efficiency"]), row["month"]
        if row["collection_efficiency"]:
            assert money(mf["instalments_due_amount"]) == money(row["due_amount"]), row["month"]
            assert money(mf["instalments_collected_amount"]) == money(row["collected_amount"]), row["month"]
    due_months = {r["month"] for r in revenue if r["collection_efficiency"]}
    assert {m for m, r in got.items() if r["collection_efficiency"]} == due_months

    calls = report(small_home.home, "calls", "--by", "all")
    assert calls, "the portfolio has calls"
    for row in calls:
        mf = got[row["period"]]
        assert count(mf["calls"]) == int(row["calls"]), row["period"]
        assert count(mf["connected_calls"]) == int(row["connected"]), row["period"]
        assert share(mf["connect_rate"]) == share(row["connect_rate"]), row["period"]
    assert {m for m, r in got.items() if r["calls"]} == {r["period"] for r in calls}


def test_figures_at_the_data_date_are_report_summary(semantic, small_home):
    """The snapshot metrics at the data date are `report summary`'s (principal outstanding,
    overdue shares, PAR30, NPL = PAR90): by day at that date, and with no time at all (a balance
    without a period is the latest snapshot's)."""
    [summary] = report(small_home.home, "summary")
    metrics = ["loans_active", "loans_overdue", "overdue_share", "overdue_share_amount",
               "principal_outstanding", "par30", "par90"]
    by_day = semantic(metrics, "metric_time__day",
                      "--where", f"{{{{ TimeDimension('metric_time', 'day') }}}} = '{summary['as_of']}'")
    assert [r["metric_time__day"][:10] for r in by_day] == [summary["as_of"]]
    [latest] = semantic(metrics, None)
    for mf in (*by_day, latest):
        assert count(mf["loans_active"]) == int(summary["active"])
        assert count(mf["loans_overdue"]) == int(summary["overdue"])
        assert money(mf["principal_outstanding"]) == money(summary["principal_outstanding"])
        assert share(mf["overdue_share"]) == share(summary["overdue_share"])
        assert share(mf["overdue_share_amount"]) == share(summary["overdue_amount_share"])
        assert share(mf["par30"]) == share(summary["par30"])
        assert share(mf["par90"]) == share(summary["npl"])


def test_a_longer_period_takes_its_last_snapshot(semantic, small_home):
    """Snapshot figures are balances, not flows: by year, each year's figure is that of its last
    snapshot (the December month end, or the data date), never a sum over the year's months."""
    monthly = {row["month"]: row for row in report(small_home.home, "overdue-monthly")}
    for row in semantic(["loans_active", "overdue_share"], "metric_time__year"):
        year = row["metric_time__year"][:4]
        last = monthly[max(m for m in monthly if m.startswith(year))]
        assert count(row["loans_active"]) == int(last["loans_active"]), year
        assert share(row["overdue_share"]) == share(last["overdue_share"]), year


def test_loan_dimensions_filter_as_the_report_filters_do(semantic, small_home):
    """The reports' loan filters are dimensions of the loan entity: `--where` on loan__product
    gives `report overdue-monthly --product`."""
    product = "bnpl"
    expected = report(small_home.home, "overdue-monthly", "--product", product)
    got = by_month(semantic(["overdue_share", "overdue_share_amount"], "metric_time__month",
                            "--where", f"{{{{ Dimension('loan__product') }}}} = '{product}'"))
    assert any(share(r["overdue_share"]) for r in expected)
    for row in expected:
        mf = got.get(row["month"], {})
        assert share(mf.get("overdue_share")) == share(row["overdue_share"]), row["month"]
        assert share(mf.get("overdue_share_amount")) == share(row["overdue_amount_share"]), row["month"]


def test_loanwatch_mf_queries_the_home_as_the_report_does(small_home, tmp_path):
    """`loanwatch mf ARGS` sets up mf's work folder in the home and runs mf there: the issue's
    query gives `report overdue-monthly`'s shares; a relative --csv lands in the caller's folder;
    the semantic manifest is parsed once while the project is unchanged."""
    if not MF.exists():
        pytest.skip(f"{MF} is missing: pip install dbt-metricflow")
    from tests.conftest import run_cli

    env = {"LOANWATCH_HOME": str(small_home.home)}
    args = ["mf", "query", "--metrics", "overdue_share", "--group-by", "metric_time__month", "--csv", "shares.csv"]
    first = run_cli(*args, env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    manifest = small_home.home / ".dbt" / "mf" / "target" / "semantic_manifest.json"
    parsed_at = manifest.stat().st_mtime_ns
    with (tmp_path / "shares.csv").open(newline="") as f:
        got = {row["metric_time__month"][:7]: share(row["overdue_share"]) for row in csv.DictReader(f)}
    expected = {row["month"]: share(row["overdue_share"]) for row in report(small_home.home, "overdue-monthly")
                if row["overdue_share"]}
    assert got == expected and len(got) > 10
    again = run_cli(*args, env=env, cwd=tmp_path)
    assert again.returncode == 0
    assert manifest.stat().st_mtime_ns == parsed_at  # not parsed again
    listed = run_cli("mf", "list", "metrics", env=env)
    assert listed.returncode == 0 and "overdue_share_amount" in listed.stdout and "connect_rate" in listed.stdout
    assert run_cli("mf", env=env).returncode == 2

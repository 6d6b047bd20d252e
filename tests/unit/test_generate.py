"""The generator: deterministic, within the contract, and believable."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from decimal import Decimal

import duckdb
import numpy as np
import pytest

from loanwatch.config import load_settings
from loanwatch.generate.portfolio import add_months_days, generate, round_half_up_div, schedule_cents
from loanwatch.generate.split import split
from loanwatch.generate.write import write_portfolio
from loanwatch.ingest.load import ingest_paths
from loanwatch.warehouse import open_writer
from tests.conftest import cli


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_same_seed_same_files_other_seed_other_files(tmp_path):
    end = dt.date(2025, 1, 31)
    write_portfolio(generate(200, seed=5, end=end), tmp_path / "a")
    write_portfolio(generate(200, seed=5, end=end), tmp_path / "b")
    write_portfolio(generate(200, seed=6, end=end), tmp_path / "c")
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv"])
def test_every_format_is_accepted_whole(tmp_path, fmt):
    out = tmp_path / "raw"
    result = cli("generate", "--clients", "150", "--seed", "3", "--end", "2025-03-31", "--format", fmt, "--out", str(out))
    assert result.exit_code == 0, result.stdout
    settings = load_settings(tmp_path / "home", environ={})
    with open_writer(settings) as con:
        results = ingest_paths(con, [out])
        counts = dict(con.execute("SELECT entity, sum(rows_accepted) FROM meta.batches GROUP BY 1").fetchall())
    assert len(results) == 11
    assert all(r.rejected == 0 and r.duplicates == 0 for r in results), [(r.path.name, r.examples) for r in results]
    assert counts["loans"] > 150 and counts["payments"] > 500
    assert counts["instalments"] > 50 and counts["agents"] >= 20 and counts["logins"] > 150
    assert counts["charges"] > 10 and counts["adjustments"] > 0


def test_believable_portfolio(small_portfolio):
    con = duckdb.connect()
    loans = con.execute(f"SELECT * FROM read_json_auto('{small_portfolio}/loans.jsonl')").df()
    clients = con.execute(f"SELECT * FROM read_json_auto('{small_portfolio}/clients.jsonl')").df()
    # several locales, products, repayment kinds, explicit schedules, versions and cancellations
    assert {"es", "ru", "en"} <= set(clients["language"])
    assert {"installment", "cash", "bnpl", "payday"} <= set(loans["product"])
    assert {"annuity", "bullet", "schedule"} <= set(loans["repayment"])
    instalments = con.execute(f"SELECT * FROM read_json_auto('{small_portfolio}/instalments.jsonl')").df()
    scheduled = set(loans.loc[loans["repayment"] == "schedule", "loan_id"])
    assert scheduled and set(instalments["loan_id"]) == scheduled
    assert {"active", "closed", "written_off", "cancelled"} <= set(loans["status"])
    assert clients["client_id"].duplicated().any()  # some clients have later versions
    payments = con.execute(f"SELECT * FROM read_json_auto('{small_portfolio}/payments.jsonl')").df()
    assert (payments["type"] == "reversal").any()
    # risk scores predict behaviour: written-off loans have a higher average risk score
    first = loans.sort_values("updated_at").drop_duplicates("loan_id", keep="first")
    bad = set(loans.loc[loans["status"] == "written_off", "loan_id"])
    risky = first.loc[first["loan_id"].isin(bad), "risk_score"].mean()
    others = first.loc[~first["loan_id"].isin(bad), "risk_score"].mean()
    assert risky > others + 0.15


def _jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_servicing_events_at_a_consumer_lenders_rates(small_portfolio):
    """Penalties 15 days after the due date of an instalment of an installment, cash or payday loan,
    waivers naming a penalised instalment, reversals of earlier charges of the same loan, recoveries
    after write-off; servicing events on about a tenth of the loans."""
    from tests import reference

    loans, events, data_date = reference.load(small_portfolio)
    charges = _jsonl(small_portfolio / "charges.jsonl")
    adjustments = _jsonl(small_portfolio / "adjustments.jsonl")
    live = [loan_id for loan_id, loan in loans.items() if not loan["cancelled"]]
    serviced = {r["loan_id"] for r in charges + adjustments}
    assert 0.07 <= len(serviced) / len(live) <= 0.16, len(serviced) / len(live)
    by_id = {c["charge_id"]: c for c in charges}
    penalties = {}
    for c in charges:
        loan = loans[c["loan_id"]]
        if c["type"] == "reversal":
            undone = by_id[c["reverses"]]
            assert undone["loan_id"] == c["loan_id"] and undone["charged_at"] < c["charged_at"]
            continue
        due = reference.instalments(loan)[c["instalment"] - 1][0]
        charged = dt.date.fromisoformat(c["charged_at"][:10])
        if c["type"] == "penalty":
            assert loan["product"] in ("installment", "cash", "payday") and charged == due + dt.timedelta(days=15)
            assert max(Decimal("15.00"), min(Decimal("250.00"), Decimal(str(c["amount"])))) == Decimal(str(c["amount"]))
            penalties[c["loan_id"], c["instalment"]] = c
        else:
            assert c["type"] == "fee" and charged < due
    assert 0.05 <= len({k[0] for k in penalties}) / len(live) <= 0.15
    assert sum(c["type"] == "reversal" for c in charges) >= 1
    for a in adjustments:
        penalty = penalties[a["loan_id"], a["instalment"]]  # a penalised instalment, after the penalty
        assert a["adjusted_at"] > penalty["charged_at"]
        if a["type"] == "waive_penalty":
            assert a["amount"] == penalty["amount"]
        else:
            assert a["type"] == "waive_interest"
            assert Decimal(str(a["amount"])) == reference.instalments(loans[a["loan_id"]])[a["instalment"] - 1][2]
    assert {"waive_penalty", "waive_interest"} == {a["type"] for a in adjustments}
    recovered = [e for loan_id, loan in loans.items() if loan["written_off"]
                 for e in events.get(loan_id, []) if e.kind == "payment" and e.at.date() >= loan["written_off"]]
    assert len(recovered) >= 3



@pytest.fixture(scope="module")
def larger_portfolio(tmp_path_factory):
    """2,000 clients (seed 7): enough restructured loans to measure their rate."""
    out = tmp_path_factory.mktemp("larger_raw")
    write_portfolio(generate(2000, seed=7, start=dt.date(2024, 1, 1), end=dt.date(2025, 6, 30)), out)
    return out


def test_restructurings_at_a_consumer_lenders_rates(larger_portfolio):
    """About 1.5 % of installment and cash loans are restructured 8-14 days after an instalment
    falls due unpaid (the first one missed, after at least one paid): a loan version with
    `restructured_at` and `repayment: schedule` (every later version repeats those terms, as a
    correction), and instalment records from that date whose principals add up to the principal
    outstanding the day before (a remaining schedule), monthly from a month after it, at least 3
    months longer than what was left. Some clients pay the new schedule, some fall behind again."""
    from tests import reference

    loans, events, data_date = reference.load(larger_portfolio)
    versions = {}
    for v in _jsonl(larger_portfolio / "loans.jsonl"):
        versions.setdefault(v["loan_id"], []).append(v)
    restructured = {loan_id: [v for v in vs if v["restructured_at"]] for loan_id, vs in versions.items()}
    restructured = {loan_id: r[0] for loan_id, r in restructured.items() if r}
    eligible = [loan_id for loan_id, loan in loans.items()
                if loan["product"] in ("installment", "cash") and not loan["cancelled"]]
    assert 0.008 <= len(restructured) / len(eligible) <= 0.03, (len(restructured), len(eligible))
    records = {}
    for r in _jsonl(larger_portfolio / "instalments.jsonl"):
        if r["effective_from"]:
            records.setdefault(r["loan_id"], []).append(r)
    assert set(records) == set(restructured)
    charged = {r["loan_id"] for r in _jsonl(larger_portfolio / "charges.jsonl") + _jsonl(larger_portfolio / "adjustments.jsonl")}
    assert not charged & set(restructured)
    states = set()
    for loan_id, version in restructured.items():
        day = dt.date.fromisoformat(version["restructured_at"])
        first = versions[loan_id][0]
        assert first["repayment"] == "annuity" and first["product"] in ("installment", "cash")
        assert version["repayment"] == "schedule" and version["term_months"] is None
        assert version["updated_at"] == f"{day}T09:00:00Z"
        later = [v for v in versions[loan_id] if v["updated_at"] > version["updated_at"]]
        assert all(v["repayment"] == "schedule" and not v["restructured_at"] for v in later)
        new = sorted(records[loan_id], key=lambda r: r["number"])
        assert {r["effective_from"] for r in new} == {version["restructured_at"]}
        assert [r["number"] for r in new] == list(range(1, len(new) + 1))
        assert [r["due_date"] for r in new] == [
            str(reference.add_months(day, k)) for k in range(1, len(new) + 1)]
        before = reference.figures_at(loans[loan_id], events.get(loan_id, []), day - dt.timedelta(days=1))
        assert before.state == "overdue" and 7 <= before.dpd <= 13, (loan_id, before)
        assert sum(Decimal(str(r["principal"])) for r in new) == before.principal_outstanding
        unpaid_left = sum(1 for due, *_ in reference.instalments(first) if due >= day - dt.timedelta(days=14))
        assert len(new) >= unpaid_left + 3
        states.add(reference.figures_at(loans[loan_id], events.get(loan_id, []), data_date).state)
    assert "current" in states or "closed" in states
    assert "overdue" in states or "written_off" in states


def test_a_loan_that_pays_closes_with_its_charges_and_waivers(small_portfolio):
    """The payments that settle a charged instalment pay its charges (less its waivers): a loan has
    a `closed` version exactly when it is closed at the data date by METRICS v3 (tests/reference.py),
    with or without servicing events."""
    from tests import reference

    loans, events, data_date = reference.load(small_portfolio)
    closed = {r["loan_id"] for r in _jsonl(small_portfolio / "loans.jsonl") if r["status"] == "closed"}
    figures = {loan_id: reference.figures_at(loan, events.get(loan_id, []), data_date) for loan_id, loan in loans.items()}
    assert closed == {loan_id for loan_id, f in figures.items() if f.state == "closed"}
    serviced = {r["loan_id"] for r in _jsonl(small_portfolio / "charges.jsonl")}
    assert len(closed & serviced) >= 10
    # and no waiver goes beyond what is open: every loan closed at the end owes nothing, nor has credit
    for loan_id in closed & serviced:
        open_amounts, _ = reference.allocate(loans[loan_id], events[loan_id], data_date)
        assert all(v == 0 for owed in open_amounts for v in owed.values())
        assert sum(e.amount for e in events[loan_id] if e.kind == "payment") == sum(
            p + i + f + n for _, p, i, f, n in reference.instalments(loans[loan_id])) + sum(
            e.amount if e.kind == "charge" else -e.amount for e in events[loan_id] if e.kind != "payment")


def test_a_connected_call_makes_a_login_within_48_hours_more_likely(small_portfolio):
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    rates = dict(con.execute(f"""
        SELECT c.talk_seconds > 0 AS connected,
               avg(CASE WHEN EXISTS (SELECT 1 FROM read_json_auto('{small_portfolio}/logins.jsonl') g
                                     WHERE g.client_id = c.client_id AND g.logged_in_at > c.called_at
                                       AND g.logged_in_at <= c.called_at + INTERVAL 48 HOUR) THEN 1 ELSE 0 END)
        FROM read_json_auto('{small_portfolio}/calls.jsonl') c GROUP BY 1""").fetchall())
    # the generator's 0.45 after a connected call and 0.12 otherwise, plus the clients' own sessions
    assert rates[True] > rates[False] + 0.2, rates
    agents = con.execute(f"SELECT agent_id, count(*) FROM read_json_auto('{small_portfolio}/agents.jsonl') GROUP BY 1").fetchall()
    assert len(agents) == 20 and any(n == 2 for _, n in agents)  # some agents have a second version


def test_schedule_arithmetic_matches_metrics():
    # 1000 at 12 % over 3 months: 330.02/10.00, 333.32/6.70, 336.66/3.37 (METRICS §1)
    loan, k, p, i = schedule_cents(np.array([100000]), np.array([12000000]), np.array([3]), np.array([False]))
    assert p.tolist() == [33002, 33332, 33666] and i.tolist() == [1000, 670, 337]
    assert round_half_up_div(np.array([5]), 2).tolist() == [3]
    day = (dt.date(2024, 1, 31) - dt.date(1970, 1, 1)).days
    got = add_months_days(np.array([day, day]), np.array([1, 13]))
    assert [dt.date(1970, 1, 1) + dt.timedelta(days=int(d)) for d in got] == [dt.date(2024, 2, 29), dt.date(2025, 2, 28)]


def test_split_is_chronological_and_complete(tmp_path, small_portfolio):
    parts = split([small_portfolio], 4, tmp_path / "parts").parts
    assert sorted(parts) == [1, 2, 3, 4]
    con = duckdb.connect()
    original = con.execute(f"SELECT count(*) FROM read_json_auto('{small_portfolio}/payments.jsonl')").fetchone()[0]
    bounds = []
    total = 0
    for k in range(1, 5):
        f = tmp_path / "parts" / f"part_{k:02d}" / "payments.jsonl"
        if f.stat().st_size == 0:
            continue
        lo, hi, n = con.execute(f"SELECT min(paid_at::TIMESTAMP), max(paid_at::TIMESTAMP), count(*) FROM read_json_auto('{f}')").fetchone()
        bounds.append((lo, hi))
        total += n
    assert total == original
    assert all(bounds[i][1] <= bounds[i + 1][0] for i in range(len(bounds) - 1))
    # later versions of a loan arrive in later parts
    seen = {}
    for k in range(1, 5):
        for line in (tmp_path / "parts" / f"part_{k:02d}" / "loans.jsonl").read_text().splitlines():
            rec = json.loads(line)
            if rec["loan_id"] in seen:
                assert seen[rec["loan_id"]] <= k
            seen[rec["loan_id"]] = k
    # instalment records have no time of their own: all in part 1; logins go by logged_in_at
    lines = {k: len((tmp_path / "parts" / f"part_{k:02d}" / "instalments.jsonl").read_text().splitlines())
             for k in range(1, 5)}
    assert lines[1] == len((small_portfolio / "instalments.jsonl").read_text().splitlines()) > 0
    assert lines[2] == lines[3] == lines[4] == 0
    logins = [con.execute(f"SELECT count(*), min(logged_in_at::TIMESTAMP) FROM read_json_auto('{tmp_path}/parts/part_0{k}/logins.jsonl')"
                          ).fetchone() for k in range(1, 5)]
    assert sum(n for n, _ in logins) == len((small_portfolio / "logins.jsonl").read_text().splitlines())
    assert [t for _, t in logins] == sorted(t for _, t in logins)
    # charges go by charged_at, adjustments by adjusted_at: a reversal with or after its charge
    for entity, key in (("charges", "charge_id"), ("adjustments", "adjustment_id")):
        part_of = {json.loads(line)[key]: k for k in range(1, 5)
                   for line in (tmp_path / "parts" / f"part_{k:02d}" / f"{entity}.jsonl").read_text().splitlines()}
        records = _jsonl(small_portfolio / f"{entity}.jsonl")
        assert len(part_of) == len(records) and len(set(part_of.values())) > 1
        assert all(part_of[r["reverses"]] <= part_of[r[key]] for r in records if r.get("reverses"))


def test_split_part_names_sort_in_chronological_order_with_100_parts(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    days = ["2024-01-01", "2024-02-15", "2024-04-01"]  # first, middle, last of the span
    (raw / "payments.jsonl").write_text("".join(
        json.dumps({"payment_id": f"P{k}", "loan_id": "L1", "paid_at": d, "amount": 1}) + "\n" for k, d in enumerate(days)))
    split([raw], 100, tmp_path / "parts")
    names = [p.name for p in sorted((tmp_path / "parts").iterdir())]
    assert names[:2] == ["part_001", "part_002"] and names[-2:] == ["part_099", "part_100"]
    assert len(names) == 100
    assert "P2" in (tmp_path / "parts" / "part_100" / "payments.jsonl").read_text()
    assert "P0" in (tmp_path / "parts" / "part_001" / "payments.jsonl").read_text()


def test_nothing_happens_after_the_end_date(tmp_path):
    """`generate --end D` writes no event, version or date after D: the demo's data date is its
    --end (today), never tomorrow."""
    end = dt.date(2025, 3, 31)
    write_portfolio(generate(600, seed=11, end=end), tmp_path)
    con = duckdb.connect()
    latest = {}
    for path in sorted(tmp_path.glob("*.jsonl")):
        columns = con.execute(f"DESCRIBE SELECT * FROM read_json_auto('{path}')").fetchall()
        for name, kind, *_ in columns:
            if name.endswith(("_at", "_date")) and kind in ("DATE", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "VARCHAR"):
                value = con.execute(f"SELECT max(CAST(CAST(\"{name}\" AS TIMESTAMPTZ) AT TIME ZONE 'UTC' AS DATE)) "
                                    f"FROM read_json_auto('{path}')").fetchone()[0]
                if value is not None:
                    latest[f"{path.stem}.{name}"] = value
    assert "merchant_events.occurred_at" in latest and "payments.paid_at" in latest
    # due dates and promised dates lie ahead by nature; what happened does not
    after = {k: v for k, v in latest.items() if v > end and not k.endswith((".due_date", ".promised_date"))}
    assert after == {}
    assert latest["merchant_events.occurred_at"] == end  # the ledger runs to the end date

"""Real data through the shipped source mappings (examples/mappings/, docs/real-data.md).

For each dataset: exactly how many rows are read, accepted, left out and quarantined, and why;
figures checked against an independent reading of the source files written here (csv and json
of the standard library); and a few rows checked by hand. (loan_payments_500 has its own module.)
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections import Counter
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from loanwatch import reports
from loanwatch.reports.calls import CallFilter, calls_report
from loanwatch.reports.ledger import merchant_balance
from loanwatch.serve import open_snapshot
from tests import reference
from tests.conftest import cli, ingest_mapped, real_data

pytestmark = pytest.mark.real


def _counts(loaded):
    return {k: (r.rows_read, r.accepted, r.duplicates, r.rejected, r.filtered) for k, r in loaded.items()}


def test_seller_events_every_event_loads_with_its_code_mapped(tmp_path):
    source = real_data("seller_events")
    rows = list(csv.DictReader(open(source / "events.csv", encoding="utf-8")))
    settings, loaded = ingest_mapped(tmp_path / "home", "seller_events")
    assert _counts(loaded) == {("events.csv", "merchant_events"): (711, 711, 0, 0, 0)}
    con = open_snapshot(settings)
    got = dict(con.execute("""SELECT event_type, sum(amount) FROM core.merchant_events GROUP BY ALL""").fetchall())
    code = {"fee_commission": "fee"}
    expected: dict[str, Decimal] = Counter()
    for r in rows:
        expected[code.get(r["event_type"], r["event_type"])] += Decimal(r["amount"])
    assert got == dict(expected)
    assert set(got) == {"order_paid", "payout", "refund", "fee", "payout_reversed"}
    # by hand, the first row: 20250701-S004-837647, 2025-07-01T01:04:00, S004, fee_commission, RUB 106.4
    first = con.execute("""SELECT merchant_id, event_type, amount, currency, occurred_at FROM core.merchant_events
                           WHERE event_id = '20250701-S004-837647'""").fetchone()
    assert first == ("S004", "fee", Decimal("106.40"), "RUB", dt.datetime(2025, 7, 1, 1, 4))

    # METRICS §8 balances against an independent computation from the CSV: per seller and
    # currency, by UTC day, inflow (order_paid, payout_reversed) minus outflow, accumulated
    daily: dict[tuple, list] = {}
    for r in rows:
        kind = code.get(r["event_type"], r["event_type"])
        day = dt.datetime.fromisoformat(r["event_ts"]).date()
        entry = daily.setdefault((r["seller_id"], r["currency"], day), [0, Decimal(0), Decimal(0)])
        entry[0] += 1
        entry[1 if kind in ("order_paid", "payout_reversed") else 2] += Decimal(r["amount"])
    expected, balance = [], {}
    for (seller, currency, day), (n, inflow, outflow) in sorted(daily.items()):
        balance[seller, currency] = balance.get((seller, currency), Decimal(0)) + inflow - outflow
        expected.append((day, seller, currency, n, inflow, outflow, inflow - outflow, balance[seller, currency]))
    assert merchant_balance(con).rows == expected
    assert len(expected) == len({(s, c) for s, c, _ in daily}) * 14  # every seller has events on all 14 days


def test_callcenter_calls_agents_clients_and_logins_load_by_mapping(tmp_path):
    source = real_data("callcenter_mx")
    settings, loaded = ingest_mapped(tmp_path / "home", "callcenter_mx")
    assert _counts(loaded) == {
        # the channel lookup is no entity: reported, not loaded
        ("CanalDigital_2024.csv", None): (0, 0, 0, 0, 0),
        ("Agentes_2024.csv", "agents"): (10, 10, 0, 0, 0),
        ("Customers_2024.csv", "clients"): (782, 782, 0, 0, 0),
        ("Llamadas_2024.csv", "calls"): (1326, 1326, 0, 0, 0),
        ("logins_2024.json", "logins"): (129, 129, 0, 0, 0),
    }
    assert loaded[("CanalDigital_2024.csv", None)].status == "unmatched"
    con = open_snapshot(settings)

    calls = list(csv.DictReader(open(source / "Llamadas_2024.csv", encoding="utf-8")))

    def seconds(text: str) -> int:
        h, m, s = (int(x) for x in text.split(":"))
        return h * 3600 + m * 60 + s

    by_campaign = Counter(r["Campania"] for r in calls)
    talk = Counter()
    for r in calls:
        talk[r["Campania"]] += seconds(r["Tiempohablado"])
    got = {c: (n, t) for c, n, t in con.execute(
        "SELECT campaign, count(*), sum(talk_seconds) FROM core.calls GROUP BY ALL").fetchall()}
    assert got == {c: (by_campaign[c], talk[c]) for c in by_campaign}
    agents = Counter(r["Agente"] for r in calls)
    assert dict(con.execute("SELECT agent_id, count(*) FROM core.calls GROUP BY ALL").fetchall()) == dict(agents)

    # by hand, the first call: 6/27/2023 13:22 in Mexico City (UTC-6, no summer time since 2022)
    # is 19:22 UTC; talk 0:00:06, total 0:00:14
    first = con.execute("""SELECT client_id, called_at, talk_seconds, total_seconds, campaign, agent_id
                           FROM core.calls WHERE client_id = '46056' AND talk_seconds = 6""").fetchall()
    assert first == [("46056", dt.datetime(2023, 6, 27, 19, 22), 6, 14, "COBRANZA_INTELIGENTE_MX", "guadalupe.servin")]
    # the same call again makes the same id (a re-export loads as duplicates, not new calls)
    assert con.execute("SELECT count(DISTINCT call_id) FROM core.calls").fetchone()[0] == 1326

    # Latin-1 decoded: "López"; the id is the login the calls name
    assert con.execute("SELECT agent_name, level FROM core.agents WHERE agent_id = 'glopez'").fetchone() == (
        "Graciela López", 1)
    # clients without names are shown by their id
    assert con.execute("SELECT count(*) FROM core.clients WHERE client_name IS NULL").fetchone()[0] == 782

    logins = json.loads((source / "logins_2024.json").read_text(encoding="utf-8"))
    names = {1: "whatsapp", 2: "app"}
    assert dict(con.execute("SELECT channel, count(*) FROM core.logins GROUP BY ALL").fetchall()) == dict(
        Counter(names[r["channel"]] for r in logins))
    # 8/25/2023 15:32:00 in Mexico City is 21:32 UTC
    assert con.execute("SELECT client_id, logged_in_at, channel FROM core.logins WHERE login_id = '708'").fetchone() == (
        "1133466", dt.datetime(2023, 8, 25, 21, 32), "whatsapp")

    # METRICS §7, `report calls` by campaign, agent and login channel, against an independent
    # computation from the files: times from Mexico City to UTC, connected from 30 s of talk,
    # the client's first login in [t, t + 48 h) after a connected call
    mexico = ZoneInfo("America/Mexico_City")

    def utc(text: str, fmt: str) -> dt.datetime:
        return dt.datetime.strptime(text, fmt).replace(tzinfo=mexico).astimezone(dt.UTC).replace(tzinfo=None)

    by_client: dict[str, list] = {}
    for g in logins:
        by_client.setdefault(str(g["customerid"]), []).append((utc(g["logindate"], "%m/%d/%Y %H:%M:%S"), names[g["channel"]]))
    enriched = []
    for r in calls:
        at = utc(r["Fecha"], "%m/%d/%Y %H:%M")
        talk = seconds(r["Tiempohablado"])
        connected = talk >= 30
        after = sorted(x for x in by_client.get(r["IDCliente"], []) if connected and at <= x[0] < at + dt.timedelta(hours=48))
        enriched.append({"month": f"{at:%Y-%m}", "campaign": r["Campania"], "agent": r["Agente"], "client": r["IDCliente"],
                         "connected": connected, "talk": talk, "channel": after[0][1] if after else "(none)",
                         "login": bool(after)})

    def half_up(num: int, den: int, places: int):
        if den == 0:
            return None
        return (Decimal(num) / Decimal(den)).quantize(Decimal(1).scaleb(-places), rounding="ROUND_HALF_UP")

    for by in ("campaign", "agent", "channel"):
        groups: dict[tuple, list] = {}
        for e in enriched:
            groups.setdefault((e["month"], e[by]), []).append(e)
        expected = []
        for (month, group), rows in sorted(groups.items()):
            connected = [e for e in rows if e["connected"]]
            logins_after = sum(e["login"] for e in connected)
            expected.append((month, group, len(rows), len({e["client"] for e in rows}), len(connected),
                             half_up(len(connected), len(rows), 6), half_up(sum(e["talk"] for e in connected), len(connected), 2),
                             logins_after, half_up(logins_after, len(connected), 6)))
        assert [tuple(r) for r in calls_report(con, CallFilter(by=by)).rows] == expected, by
    assert any(e["login"] for e in enriched) and any(not e["connected"] for e in enriched)


def _kueski_reference_files(source, out):
    """Contract files for tests/reference.py, read from the dataset independently of the mapping:
    disbursed loans with their instalments as a `schedule` array (the first row of a (loan,
    number) wins, as ingest keeps the first and quarantines a different repeat), and one payment
    per repaid instalment of capital_paid + interests_paid."""
    out.mkdir(parents=True, exist_ok=True)
    loans = {}
    for r in csv.DictReader(open(source / "loan_data.csv", encoding="utf-8")):
        if r["is_disbursed"] != "TRUE":
            continue
        updated = dt.datetime.strptime(r["application_date"], "%Y/%m/%d %H:%M:%S")
        if r["loan_id"] in loans and loans[r["loan_id"]]["updated_at"] > updated.isoformat():
            continue  # the latest version's terms
        loans[r["loan_id"]] = {"loan_id": r["loan_id"], "amount": r["loanamount"], "issue_date": r["disbursed_date"],
                               "updated_at": updated.isoformat(), "schedule": []}
    seen = set()
    payments = []
    for r in csv.DictReader(open(source / "repayment_data.csv", encoding="utf-8-sig")):
        key = (r["loan_id"], r["installment_number"])
        if key not in seen:
            seen.add(key)
            loans[r["loan_id"]]["schedule"].append({"due_date": r["installment_duedate"], "principal": r["capital_due"]})
        if r["repaid_date"] != "NA":
            payments.append({"payment_id": r["installment_id"], "loan_id": r["loan_id"], "paid_at": r["repaid_date"],
                             "amount": str(Decimal(r["capital_paid"]) + Decimal(r["interests_paid"]))})
    (out / "loans.jsonl").write_text("".join(json.dumps(v) + "\n" for v in loans.values()))
    (out / "payments.jsonl").write_text("".join(json.dumps(p) + "\n" for p in payments))


def test_kueski_loans_instalments_and_repayments_match_the_reference(tmp_path):
    source = real_data("kueski_bnpl")
    settings, loaded = ingest_mapped(tmp_path / "home", "kueski_bnpl")
    assert _counts(loaded) == {
        # 7,964 applications were not disbursed; 4,934 disbursed rows are 4,931 loans (three
        # loans appear twice, with different application times: two versions each)
        ("loan_data.csv", "loans"): (12898, 4934, 0, 0, 7964),
        ("loan_data.csv", "clients"): (12898, 4934, 0, 0, 7964),
        # 13 rows repeat a (loan, number) with other content: conflicts, quarantined
        ("repayment_data.csv", "instalments"): (29571, 29558, 0, 13, 0),
        # 7,746 instalments were not repaid (repaid_date NA): no payment
        ("repayment_data.csv", "payments"): (29571, 21825, 0, 0, 7746),
    }
    reasons = loaded[("repayment_data.csv", "instalments")].examples
    assert reasons[0].startswith('repayment_data.csv:18799: loan_id "loan_9870798 #2" conflicts with line 766')
    con = open_snapshot(settings)
    assert con.execute("SELECT count(*) FROM marts.dim_loans").fetchone()[0] == 4931
    _kueski_reference_files(source, tmp_path / "reference")
    got = [tuple(None if v is None else str(v) if not isinstance(v, int) else v for v in r)
           for r in reports.overdue_monthly(con).rows]
    assert got == reference.overdue_monthly(tmp_path / "reference")
    # by hand: loan_3749096, 8737.369999999999 disbursed 2021-11-10 is 8737.37 (half-up to cents)
    assert con.execute("SELECT amount, risk_score FROM marts.dim_loans WHERE loan_id = 'loan_3749096'").fetchone() == (
        Decimal("8737.37"), Decimal("0.1"))
    # no [reports] currency: the currency holding the most principal, MXN, not the 16 USD loans
    held = dict(con.execute("SELECT currency, count(*) FROM marts.dim_loans WHERE NOT is_cancelled GROUP BY 1").fetchall())
    assert held["USD"] == 16 and held["MXN"] > 4900
    shown = cli("report", "summary", "-f", "json", home=settings.home)
    assert json.loads(shown.stdout)[0]["loans"] == held["MXN"]
    assert "money is shown in MXN only: loans in USD (16 loans) are left out" in shown.stderr


def test_berka_loans_and_their_payments_load_by_mapping(tmp_path):
    source = real_data("berka_partial")
    settings, loaded = ingest_mapped(tmp_path / "home", "berka_partial")
    counts = _counts(loaded)
    # the six files no table matches (accounts, clients, dispositions, districts, orders, the
    # description) are reported and left alone
    unmatched = sorted(name for (name, entity), r in loaded.items() if r.status == "unmatched")
    assert unmatched == ["account.asc", "client.asc", "description.txt", "disp.asc", "district.asc", "order.asc"]
    trans = open(source / "trans_first_3MiB.asc", encoding="utf-8", newline="").read().splitlines()
    uver = sum(1 for line in trans[1:] if line.split(";")[7:8] == ['"UVER"'])
    # 49,103 data rows: the last is cut mid-row (quarantined by the reader); of the rest, the
    # loan payments (k_symbol UVER) load and the other transactions are left out by `where`
    assert counts[("loan.asc", "loans")] == (682, 682, 0, 0, 0)
    assert counts[("trans_first_3MiB.asc", "payments")] == (len(trans) - 1, uver, 0, 1, len(trans) - 2 - uver)
    assert uver == 123
    con = open_snapshot(settings)
    # by hand, the first loan: 5314 of account 1787, 96396 CZK on 930705 over 12 months, status B
    assert con.execute("""SELECT amount, issue_date, term_months, source_status FROM marts.dim_loans
                          WHERE loan_id = '1787'""").fetchone() == (Decimal("96396"), dt.date(1993, 7, 5), 12, "written_off")
    loans = list(csv.DictReader(open(source / "loan.asc", encoding="utf-8"), delimiter=";"))
    statuses = Counter(r["status"] for r in loans)
    got = dict(con.execute("SELECT source_status, count(*) FROM marts.dim_loans GROUP BY ALL").fetchall())
    assert got == {"closed": statuses["A"], "written_off": statuses["B"], "active": statuses["C"] + statuses["D"]}
    # the statuses are as of 1998-12-31 (the mapping's updated_at), not of the loan date
    assert con.execute("SELECT written_off_date FROM marts.dim_loans WHERE loan_id = '1787'").fetchone() == (
        dt.date(1998, 12, 31),)

    # Reconciled as far as the transactions reach (1994-03-12, the last one): every loan issued
    # by then has its payments in the file; those the dataset calls paid (A) or running fine (C)
    # are current with no day past due; the one loan in arrears is one the dataset calls unpaid (B).
    last = dt.date(1994, 3, 12)
    status = {r["account_id"]: r["status"] for r in loans}
    issued = {r[0]: r for r in reports.loans(con, as_of=last).rows if r[3] != "not_issued"}
    assert len(issued) == 34
    assert set(issued) == {r[0] for r in con.execute("SELECT DISTINCT loan_id FROM core.payments").fetchall()}
    by_status = Counter((status[k], r[3], r[4] == 0) for k, r in issued.items())
    assert by_status == {("A", "current", True): 27, ("C", "current", True): 2,
                         ("B", "current", True): 4, ("B", "overdue", False): 1}

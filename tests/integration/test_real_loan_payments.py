"""Real data: the public "loan payments" dataset (../shared/data/real/loan_payments_500), loaded
through its shipped mapping (examples/mappings/loan_payments_500.toml, docs/real-data.md).

Each row is a loan with one instalment (Principal due on due_date); paid_off_time, when present,
is one payment of Principal. For the 100 COLLECTION loans, due_date + past_due_days = 2016-12-08,
so DPD as of 2016-12-08 must equal past_due_days; paid-off loans must be closed.
"""

from __future__ import annotations

import csv
import datetime as dt
import json

import pytest

from loanwatch import reports
from loanwatch.serve import open_snapshot
from tests.conftest import ingest_mapped, real_data

AS_OF = dt.date(2016, 12, 8)


@pytest.mark.real
def test_dpd_equals_past_due_days_and_paid_off_loans_are_closed(tmp_path):
    rows = list(csv.DictReader(open(real_data("loan_payments_500") / "loan_payments.csv", encoding="utf-8")))
    settings, loaded = ingest_mapped(tmp_path / "home", "loan_payments_500")
    # one CSV of 500 rows read as four entities: every loan, client and instalment accepted; the 100
    # loans never paid off have no payment (left out by skip_if_empty, counted)
    counts = {k: (r.rows_read, r.accepted, r.duplicates, r.rejected, r.filtered) for k, r in loaded.items()}
    assert counts == {
        ("loan_payments.csv", "loans"): (500, 500, 0, 0, 0),
        ("loan_payments.csv", "clients"): (500, 500, 0, 0, 0),
        ("loan_payments.csv", "instalments"): (500, 500, 0, 0, 0),
        ("loan_payments.csv", "payments"): (500, 400, 0, 0, 100),
    }
    # each loan's client arrives with it: the build warns of no orphan loan
    assert not [w for w in json.loads((settings.home / "last_build.json").read_text())["warnings"] if "orphan" in w]
    con = open_snapshot(settings)
    got = {r[0]: r for r in reports.loans(con, as_of=AS_OF).rows}
    assert len(got) == 500

    collection = [r for r in rows if r["loan_status"] == "COLLECTION"]
    assert len(collection) == 100
    for r in collection:
        loan = got[r["Loan_ID"]]
        assert loan[3] == "overdue", r["Loan_ID"]
        assert loan[4] == int(r["past_due_days"]), r["Loan_ID"]

    paid_off = [r for r in rows if r["loan_status"] in ("PAIDOFF", "COLLECTION_PAIDOFF")]
    assert len(paid_off) == 400
    assert all(got[r["Loan_ID"]][3] == "closed" for r in paid_off)
    # by hand, the first row: xqd20166231, 1000 issued 09/08/2016, due 10/07/2016, paid off
    # 9/14/2016 19:31 (UTC: no time zone in the mapping)
    first = con.execute("SELECT amount, issue_date, source_status FROM marts.dim_loans WHERE loan_id = 'xqd20166231'").fetchone()
    assert first == (1000, dt.date(2016, 9, 8), "closed")
    assert con.execute("SELECT due_date FROM marts.fct_instalments WHERE loan_id = 'xqd20166231'").fetchall() == [
        (dt.date(2016, 10, 7),)]

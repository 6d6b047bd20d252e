"""Real data: the public "loan payments" dataset (../shared/data/real/loan_payments_500).

Mapping (documented in docs/real-data.md): each row is a loan with one instalment, an explicit
schedule of Principal due on due_date; paid_off_time, when present, is one payment of Principal.
For the 100 COLLECTION loans, due_date + past_due_days = 2016-12-08, so DPD as of 2016-12-08 must
equal past_due_days; paid-off loans must be closed.
"""

from __future__ import annotations

import csv
import datetime as dt
import json

import pytest

from loanwatch import reports
from loanwatch.serve import open_snapshot
from tests.conftest import build_home, real_data

AS_OF = dt.date(2016, 12, 8)


def _date(text: str) -> dt.date:
    return dt.datetime.strptime(text.strip(), "%m/%d/%Y").date()


def convert(source, out):
    """Write contract files (loans.jsonl, payments.jsonl) from the dataset's CSV."""
    out.mkdir(parents=True, exist_ok=True)
    rows = list(csv.DictReader(open(source / "loan_payments.csv", encoding="utf-8")))
    with open(out / "loans.jsonl", "w") as loans, open(out / "payments.jsonl", "w") as payments:
        for r in rows:
            issue = _date(r["effective_date"])
            loans.write(json.dumps({
                "loan_id": r["Loan_ID"], "client_id": r["Loan_ID"], "amount": r["Principal"],
                "issue_date": issue.isoformat(),
                "schedule": [{"due_date": _date(r["due_date"]).isoformat(), "principal": r["Principal"]}],
                "status": r["loan_status"].lower(), "updated_at": issue.isoformat(),
            }) + "\n")
            if r["paid_off_time"].strip():
                paid = dt.datetime.strptime(r["paid_off_time"].strip(), "%m/%d/%Y %H:%M")
                payments.write(json.dumps({
                    "payment_id": "pay-" + r["Loan_ID"], "loan_id": r["Loan_ID"],
                    "paid_at": paid.isoformat() + "Z", "amount": r["Principal"],
                }) + "\n")
    return rows


@pytest.mark.real
def test_dpd_equals_past_due_days_and_paid_off_loans_are_closed(tmp_path):
    source = real_data("loan_payments_500")
    rows = convert(source, tmp_path / "raw")
    settings = build_home(tmp_path / "home", tmp_path / "raw")
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

"""A small, obviously-correct reference of METRICS §1-4, over raw NDJSON files.

Plain Python and Decimal, one loan at a time, straight from the definitions: no SQL, nothing
shared with the warehouse code. Slow, and meant for a few hundred loans in tests.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import math
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal, getcontext
from pathlib import Path

CENT = Decimal("0.01")
getcontext().prec = 60  # products of amounts near 10^16 and 8-decimal rates, exactly


def _round(x: Decimal) -> Decimal:
    return x.quantize(CENT, rounding=ROUND_HALF_UP)


def _ratio6(a, b):
    if not b:
        return None
    return (Decimal(a) / Decimal(b)).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)


def _ts(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def add_months(d: dt.date, k: int) -> dt.date:
    month = d.month - 1 + k
    year = d.year + month // 12
    month = month % 12 + 1
    return dt.date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def schedule(loan: dict) -> list[tuple[dt.date, Decimal, Decimal]]:
    """METRICS §1: (due_date, principal, interest) per instalment, in due order."""
    amount = Decimal(str(loan["amount"])).quantize(CENT, rounding=ROUND_HALF_UP)
    issue = dt.date.fromisoformat(loan["issue_date"])
    rate = Decimal(str(loan.get("interest_rate") or 0))
    if loan.get("schedule"):
        items = loan["schedule"]
        rows = [(dt.date.fromisoformat(i["due_date"]), _round(Decimal(str(i["principal"]))),
                 _round(Decimal(str(i.get("interest") or 0))), int(i.get("number", n))) for n, i in enumerate(items)]
        rows.sort(key=lambda r: (r[0], r[3]))
        return [(d, p, i) for d, p, i, _ in rows]
    n = int(loan["term_months"])
    if (loan.get("repayment") or "annuity") == "bullet":
        return [(add_months(issue, n), amount, _round(amount * rate * n / 12))]
    if rate == 0:
        base = _round(amount / n)
        return [(add_months(issue, k), base if k < n else amount - base * (n - 1), Decimal(0)) for k in range(1, n + 1)]
    # A real power needs floating point: the payment in cents is computed in double precision
    # and rounded half-up, in the same order of operations as the warehouse (macros/annuity.sql).
    r = int(rate * 100_000_000) / 1_200_000_000.0
    payment = Decimal(math.floor(float(int(amount * 100)) * r / (1 - (1 + r) ** -n) + 0.5)) / 100
    out, balance = [], amount
    for k in range(1, n + 1):
        interest = _round(balance * rate / 12)
        principal = payment - interest if k < n else balance
        out.append((add_months(issue, k), principal, interest))
        balance -= principal
    return out


def load(folder: Path) -> tuple[dict, dict, dt.date]:
    """Loans (latest terms, cancelled flag, write-off date) and effective payments per loan."""
    versions = defaultdict(list)
    for line in (folder / "loans.jsonl").read_text().splitlines():
        if line.strip():
            rec = json.loads(line, parse_float=Decimal)
            versions[rec["loan_id"]].append(rec)
    # instalment records (contract v2): the schedule of a loan with repayment `schedule` and no
    # array; the first record of a (loan, number) counts, as ingest keeps it
    records = defaultdict(dict)
    path = folder / "instalments.jsonl"
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                rec = json.loads(line, parse_float=Decimal)
                records[rec["loan_id"]].setdefault(int(rec["number"]), rec)
    loans = {}
    dates = []
    for loan_id, vs in versions.items():
        vs.sort(key=lambda v: _ts(v["updated_at"]))
        latest = vs[-1]
        terms = [v for v in vs if not v.get("deleted")][-1]
        write_offs = [_ts(v["updated_at"]).date() for v in vs if v.get("status") == "written_off"]
        if terms.get("repayment") == "schedule" and not terms.get("schedule"):
            terms = {**terms, "schedule": [records[loan_id][n] for n in sorted(records[loan_id])]}
        loans[loan_id] = {
            **terms,
            "cancelled": bool(latest.get("deleted")) or latest.get("status") == "cancelled",
            "written_off": min(write_offs) if write_offs else None,
        }
        dates.append(dt.date.fromisoformat(terms["issue_date"]))
    raw_payments = []
    for line in (folder / "payments.jsonl").read_text().splitlines():
        if line.strip():
            raw_payments.append(json.loads(line, parse_float=Decimal))
    reversed_ids = {p["reverses"] for p in raw_payments if p.get("type") == "reversal"}
    payments = defaultdict(list)
    for p in raw_payments:
        dates.append(_ts(p["paid_at"]).date())
        if p.get("type", "payment") == "payment" and p["payment_id"] not in reversed_ids:
            payments[p["loan_id"]].append((_ts(p["paid_at"]), p["payment_id"], _round(Decimal(str(p["amount"])))))
    for name, field in (("calls", "called_at"), ("merchant_events", "occurred_at")):
        path = folder / f"{name}.jsonl"
        if path.exists():
            for line in path.read_text().splitlines():
                if line.strip():
                    dates.append(_ts(json.loads(line, parse_float=Decimal)[field]).date())
    for plist in payments.values():
        plist.sort()
    return loans, payments, max(dates)


def state_at(loan: dict, pays: list, d: dt.date) -> tuple[str, Decimal]:
    """METRICS §3: (state, principal outstanding) at the end of day d."""
    if loan["cancelled"]:
        return "cancelled", Decimal(0)
    if dt.date.fromisoformat(loan["issue_date"]) > d:
        return "not_issued", Decimal(0)
    if loan["written_off"] is not None and loan["written_off"] <= d:
        return "written_off", Decimal(0)
    inst = schedule(loan)
    # §2 in cumulative form: instalment k is paid on the date the cumulative paid reaches cum due.
    paid_on = []
    cum_due = Decimal(0)
    for _due_date, principal, interest in inst:
        cum_due += principal + interest
        cum_paid, when = Decimal(0), None
        for paid_at, _, amount in pays:
            cum_paid += amount
            if cum_paid >= cum_due:
                when = paid_at.date()
                break
        paid_on.append(when)
    if paid_on[-1] is not None and paid_on[-1] <= d:
        return "closed", Decimal(0)
    # principal allocated by payments up to d: fill interest then principal of each instalment
    available = sum((a for t, _, a in pays if t.date() <= d), Decimal(0))
    principal_paid = Decimal(0)
    for _, principal, interest in inst:
        take_interest = min(available, interest)
        available -= take_interest
        take_principal = min(available, principal)
        available -= take_principal
        principal_paid += take_principal
    outstanding = _round(Decimal(str(loan["amount"]))) - principal_paid  # half-up, as the contract says
    overdue = any(due < d and (p is None or p > d) for (due, _, _), p in zip(inst, paid_on))
    return ("overdue" if overdue else "current"), outstanding


def overdue_monthly(folder: Path, min_amount=None, max_amount=None) -> list[tuple]:
    """METRICS §4 at the data date, as rows of strings and ints like the report."""
    loans, payments, data_date = load(folder)
    first = min(dt.date.fromisoformat(loan["issue_date"]) for loan in loans.values() if not loan["cancelled"])
    rows = []
    month = dt.date(first.year, first.month, 1)
    while month <= data_date:
        end = dt.date(month.year, month.month, calendar.monthrange(month.year, month.month)[1])
        s = min(end, data_date)
        active = overdue = 0
        outstanding = overdue_principal = Decimal(0)
        for loan_id, loan in loans.items():
            amount = Decimal(str(loan["amount"]))
            if (min_amount is not None and amount < min_amount) or (max_amount is not None and amount > max_amount):
                continue
            state, balance = state_at(loan, payments.get(loan_id, []), s)
            if state in ("current", "overdue"):
                active += 1
                outstanding += balance
                if state == "overdue":
                    overdue += 1
                    overdue_principal += balance
        rows.append((
            f"{month:%Y-%m}", active, overdue,
            None if not active else str(_ratio6(overdue, active)),
            str(outstanding.quantize(CENT)), str(overdue_principal.quantize(CENT)),
            None if not outstanding else str(_ratio6(overdue_principal, outstanding)),
        ))
        month = add_months(month, 1)
    return rows

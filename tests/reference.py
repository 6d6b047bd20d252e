"""A small, obviously-correct reference of METRICS §1-4 (version 3), over raw NDJSON files.

Plain Python and Decimal, one loan at a time, straight from the definitions: no SQL, nothing
shared with the warehouse code. Slow, and meant for a few hundred loans in tests.

§2 is followed event by event: a loan's charges, waivers (adjustments) and payments, reversed ones
left out entirely, taken in order of (time, kind charge < waiver < payment, id). A charge adds to its
instalment's fee or penalty; a waiver takes from the open amounts of its component, in due-date
order (only its instalment's where it names one), never more than is open; a payment fills the
instalments in due-date order, each one's components in the default allocation order (penalty,
fee, interest, principal); what is left is a credit, applied at once to anything owed later (a
charge). For a loan with none of them this is version 2's cumulative rule. Settings are the
defaults (allocation_order, tolerance 0.00, DPD not counting the due day).

Restructuring (§2 "Restructuring", contract "Corrections and restructurings") is followed too. A
loan's schedules (`Regime`) are worked out once, in `load`: a version with `restructured_at` holds
from that date, a version without one corrects the one before it (at every date), and of the
instalment records those with the latest `effective_from` on or before a date are in force. At a
day D the schedule in force at D is allocated: a *complete* one (its principals add up to those of
the schedule the loan was issued with, within 0.01 x its instalments) takes every event from the
start, like the first; any other is read as a *remaining* one: it takes the events from its date
on (that day's too), starting without credit, and its principal outstanding is what its
instalments still owe in principal. Files are read as given: nothing is quarantined (such as a
`schedule` array that does not sum to the amount, which ingest quarantines, restructuring or not).
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import math
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal, getcontext
from pathlib import Path
from typing import NamedTuple

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
getcontext().prec = 60  # products of amounts near 10^16 and 8-decimal rates, exactly

ALLOCATION_ORDER = ("penalty", "fee", "interest", "principal")  # METRICS §2 default
TOLERANCE = Decimal("0.00")
KIND_ORDER = {"charge": 0, "waiver": 1, "payment": 2}
ACTIVE = ("current", "overdue")


def _round(x: Decimal) -> Decimal:
    return x.quantize(CENT, rounding=ROUND_HALF_UP)


def _money(value) -> Decimal:
    return _round(Decimal(str(value or 0)))


def _ratio6(a, b):
    if not b:
        return None
    return (Decimal(a) / Decimal(b)).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)


def _ts(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def _records(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line, parse_float=Decimal) for line in path.read_text().splitlines() if line.strip()]


def add_months(d: dt.date, k: int) -> dt.date:
    month = d.month - 1 + k
    year = d.year + month // 12
    month = month % 12 + 1
    return dt.date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def instalments(loan: dict) -> list[tuple[dt.date, Decimal, Decimal, Decimal, Decimal]]:
    """METRICS §1-2: (due_date, principal, interest, fee, penalty) per instalment, in due order
    (ties: number); instalment k of a loan is the k-th of this list."""
    amount = _money(loan["amount"])
    issue = dt.date.fromisoformat(loan["issue_date"])
    rate = Decimal(str(loan.get("interest_rate") or 0))
    if loan.get("schedule"):
        items = loan["schedule"]
        rows = [(dt.date.fromisoformat(i["due_date"]), _money(i["principal"]), _money(i.get("interest")),
                 _money(i.get("fee")), _money(i.get("penalty")), int(i.get("number", n))) for n, i in enumerate(items)]
        rows.sort(key=lambda r: (r[0], r[5]))
        return [r[:5] for r in rows]
    n = int(loan["term_months"])
    if (loan.get("repayment") or "annuity") == "bullet":
        return [(add_months(issue, n), amount, _round(amount * rate * n / 12), ZERO, ZERO)]
    if rate == 0:
        base = _round(amount / n)
        return [(add_months(issue, k), base if k < n else amount - base * (n - 1), ZERO, ZERO, ZERO)
                for k in range(1, n + 1)]
    # A real power needs floating point: the payment in cents is computed in double precision
    # and rounded half-up, in the same order of operations as the warehouse (macros/annuity.sql).
    r = int(rate * 100_000_000) / 1_200_000_000.0
    payment = Decimal(math.floor(float(int(amount * 100)) * r / (1 - (1 + r) ** -n) + 0.5)) / 100
    out, balance = [], amount
    for k in range(1, n + 1):
        interest = _round(balance * rate / 12)
        principal = payment - interest if k < n else balance
        out.append((add_months(issue, k), principal, interest, ZERO, ZERO))
        balance -= principal
    return out


def schedule(loan: dict) -> list[tuple[dt.date, Decimal, Decimal]]:
    """METRICS §1: (due_date, principal, interest) per instalment, in due order."""
    return [(due, principal, interest) for due, principal, interest, _, _ in instalments(loan)]


class Regime(NamedTuple):
    """One schedule of a loan, and how §2 applies events to it ("Restructuring")."""

    start: dt.date | None  # in force from this date (None: the schedule the loan was issued with)
    terms: dict  # the loan version it comes from, its instalment records as its `schedule`
    rows: list[tuple[dt.date, Decimal, Decimal, Decimal, Decimal]]  # instalments(terms)
    events_from: dt.date | None  # None: every event (issued or complete); else those from this day on
    principal: Decimal  # principal owed before its events: the amount issued, or a remaining one's principals


def _regimes(versions: list[dict], records: dict) -> list[Regime]:
    """A loan's schedules in the order they come into force (contract: "Corrections and
    restructurings"). versions: its versions that are not deletions, by updated_at; records: its
    instalment records by effective_from (None: those of the schedule it was issued with), then
    by number."""
    # the date from which each version's terms hold: its restructured_at; a version without one
    # corrects the one before it, so it holds from that one's date (None: from the start)
    dated, since = [], None
    for version in versions:
        if version.get("restructured_at"):
            since = dt.date.fromisoformat(version["restructured_at"])
        dated.append((since, version))

    def on_or_before(day, d):
        return day is None or (d is not None and day <= d)

    def version_at(d):
        """The terms in force at d: the latest version whose date is on or before d (before every
        date, when every version restructures: the latest of the earliest date)."""
        held = [v for day, v in dated if on_or_before(day, d)]
        if not held:
            first = min(day for day, _ in dated)
            held = [v for day, v in dated if day == first]
        return held[-1]

    def records_at(d):
        """The effective_from of the instalment records in force at d: the latest on or before d
        (before all of them: the earliest)."""
        days = sorted(records, key=lambda day: day or dt.date.min)
        held = [day for day in days if on_or_before(day, d)] or days[:1]
        return held[-1] if held else None

    starts = sorted({None, *(day for day, _ in dated), *records}, key=lambda day: day or dt.date.min)
    regimes: list[Regime] = []
    source = None
    for start in starts:
        version = version_at(start)
        from_records = version.get("repayment") == "schedule" and not version.get("schedule")
        key = records_at(start) if from_records else None
        if regimes and source[0] is version and source[1] == key:
            continue  # the same schedule as before this date: no new one
        source = version, key
        terms = version
        if from_records:
            given = records.get(key, {})
            terms = {**version, "schedule": [given[n] for n in sorted(given)]}
        rows = instalments(terms)
        if not regimes:  # the schedule the loan was issued with, in force from the start
            regimes.append(Regime(None, terms, rows, None, _money(terms["amount"])))
            continue
        issued = regimes[0]
        total = sum((row[1] for row in rows), ZERO)
        if abs(total - sum((row[1] for row in issued.rows), ZERO)) <= CENT * len(rows):
            # complete: it lists the instalments already paid too, and takes every event
            regimes.append(Regime(start, terms, rows, None, issued.principal))
        else:
            # remaining (or neither, read as remaining): what was outstanding on its date
            regimes.append(Regime(start, terms, rows, start, total))
    return regimes


def _regime_at(loan: dict, d: dt.date) -> Regime:
    """The schedule in force at the end of day d (the first one before any later one's date)."""
    if "_regimes" not in loan:  # a loan not from load(): its own terms, from the start
        loan["_regimes"] = _regimes([loan], {})
    return [r for r in loan["_regimes"] if r.start is None or r.start <= d][-1]


class Event(NamedTuple):
    """A charge, waiver or payment of a loan, in the order §2 takes them."""

    at: dt.datetime
    kind_order: int
    event_id: str
    kind: str  # charge, waiver or payment
    amount: Decimal
    component: str | None = None  # charge: fee or penalty; waiver: the component it forgives
    instalment: int | None = None  # the instalment a charge or waiver names
    due_date: dt.date | None = None  # a charge's due date


def _effective(records: list[dict], key: str) -> list[dict]:
    """The records that are not reversals and that no reversal of the same loan undoes."""
    undone = {(r["loan_id"], r.get("reverses")) for r in records if r.get("type") == "reversal"}
    return [r for r in records if r.get("type") != "reversal" and (r["loan_id"], r[key]) not in undone]


def load(folder: Path) -> tuple[dict, dict, dt.date]:
    """Loans (latest terms, cancelled flag, write-off date, and under `_regimes` their schedules in
    the order they come into force), each loan's effective events in §2's order (payments, and the
    charges and adjustments of contract v3), and the data date."""
    versions = defaultdict(list)
    for rec in _records(folder / "loans.jsonl"):
        versions[rec["loan_id"]].append(rec)
    # instalment records: the schedules of a loan with repayment `schedule` and no array, one per
    # effective_from (None: the schedule it was issued with); the first record of a (loan,
    # effective_from, number) counts, as ingest keeps it
    records = defaultdict(lambda: defaultdict(dict))
    for rec in _records(folder / "instalments.jsonl"):
        since = dt.date.fromisoformat(rec["effective_from"]) if rec.get("effective_from") else None
        records[rec["loan_id"]][since].setdefault(int(rec["number"]), rec)
    loans = {}
    dates = []
    for loan_id, vs in versions.items():
        vs.sort(key=lambda v: _ts(v["updated_at"]))
        latest = vs[-1]
        regimes = _regimes([v for v in vs if not v.get("deleted")], records[loan_id])
        terms = regimes[-1].terms  # the latest version's, with the latest instalment records
        write_offs = [_ts(v["updated_at"]).date() for v in vs if v.get("status") == "written_off"]
        loans[loan_id] = {
            **terms,
            "cancelled": bool(latest.get("deleted")) or latest.get("status") == "cancelled",
            "written_off": min(write_offs) if write_offs else None,
            "_regimes": regimes,
        }
        dates.append(dt.date.fromisoformat(terms["issue_date"]))
    events = defaultdict(list)
    raw_payments = _records(folder / "payments.jsonl")
    dates += [_ts(p["paid_at"]).date() for p in raw_payments]
    for p in _effective(raw_payments, "payment_id"):
        events[p["loan_id"]].append(Event(_ts(p["paid_at"]), KIND_ORDER["payment"], p["payment_id"], "payment",
                                          _money(p["amount"])))
    for c in _effective(_records(folder / "charges.jsonl"), "charge_id"):
        at = _ts(c["charged_at"])
        events[c["loan_id"]].append(Event(
            at, KIND_ORDER["charge"], c["charge_id"], "charge", _money(c["amount"]), c["type"],
            None if c.get("instalment") is None else int(c["instalment"]),
            dt.date.fromisoformat(c["due_date"]) if c.get("due_date") else at.date()))
    for a in _effective(_records(folder / "adjustments.jsonl"), "adjustment_id"):
        events[a["loan_id"]].append(Event(
            _ts(a["adjusted_at"]), KIND_ORDER["waiver"], a["adjustment_id"], "waiver", _money(a["amount"]),
            a["type"].removeprefix("waive_"), None if a.get("instalment") is None else int(a["instalment"])))
    for name, field in (("calls", "called_at"), ("merchant_events", "occurred_at")):
        dates += [_ts(r[field]).date() for r in _records(folder / f"{name}.jsonl")]
    for loan_events in events.values():
        loan_events.sort(key=lambda e: (e.at, e.kind_order, e.event_id))
    return loans, events, max(dates)


def _pay(open_amounts: list[dict], available: Decimal) -> tuple[Decimal, Decimal]:
    """Fill the open components, instalments in due order, each in ALLOCATION_ORDER; returns what
    is left (the credit) and the principal it took."""
    principal = ZERO
    for owed in open_amounts:
        for component in ALLOCATION_ORDER:
            take = min(available, owed[component])
            owed[component] -= take
            available -= take
            if component == "principal":
                principal += take
    return available, principal


def allocate(loan: dict, events: list[Event], d: dt.date) -> tuple[list[dict], Decimal]:
    """METRICS §2 at the end of day d: each instalment's open amount per component, and the
    principal that payments and waivers took, of the schedule in force at d (its instalments, in
    due order). A remaining schedule takes the events from its date on, and no credit from before."""
    regime = _regime_at(loan, d)
    rows = regime.rows
    open_amounts = [{"principal": p, "interest": i, "fee": f, "penalty": n} for _, p, i, f, n in rows]
    credit = ZERO
    principal_taken = ZERO
    for e in events:
        if e.at.date() > d:
            break
        if regime.events_from is not None and e.at.date() < regime.events_from:
            continue  # settled before a remaining schedule: it stays settled
        if e.kind == "charge":
            if e.instalment is not None:
                k = min(e.instalment, len(rows))  # one past the end: the last (as the warehouse does)
            else:
                k = next((k for k, row in enumerate(rows, start=1) if row[0] >= e.due_date), len(rows))
            open_amounts[k - 1][e.component] += e.amount
            credit, taken = _pay(open_amounts, credit)  # a credit pays what is owed later at once
            principal_taken += taken
        elif e.kind == "waiver":
            left = e.amount
            for k, owed in enumerate(open_amounts, start=1):
                if e.instalment is not None and k != e.instalment:
                    continue
                take = min(left, owed[e.component])
                owed[e.component] -= take
                left -= take
                if e.component == "principal":
                    principal_taken += take
        else:
            credit, taken = _pay(open_amounts, credit + e.amount)
            principal_taken += taken
    return open_amounts, principal_taken


class Figures(NamedTuple):
    """A loan at the end of a day (METRICS §3)."""

    state: str
    dpd: int
    principal_outstanding: Decimal
    past_due_amount: Decimal
    charges_past_due: Decimal


def figures_at(loan: dict, events: list[Event], d: dt.date) -> Figures:
    """METRICS §3: the loan's state, DPD, principal outstanding, past-due amount (and its fee and
    penalty part) at the end of day d; all but the state are 0 for a loan that is not active."""
    off_book = ZERO, ZERO, ZERO
    if loan["cancelled"]:
        return Figures("cancelled", 0, *off_book)
    if dt.date.fromisoformat(loan["issue_date"]) > d:
        return Figures("not_issued", 0, *off_book)
    if loan["written_off"] is not None and loan["written_off"] <= d:
        return Figures("written_off", 0, *off_book)
    regime = _regime_at(loan, d)
    open_amounts, principal_taken = allocate(loan, events, d)
    dues = [row[0] for row in regime.rows]
    is_open = [sum(owed.values()) > TOLERANCE for owed in open_amounts]
    if not any(is_open):
        return Figures("closed", 0, *off_book)
    overdue = [due for due, o in zip(dues, is_open) if o and due < d]
    dpd = (d - min(overdue)).days if overdue else 0
    past = [owed for due, owed in zip(dues, open_amounts) if due < d]
    return Figures(
        "overdue" if dpd >= 1 else "current",
        dpd,
        # the amount issued (half-up, as the contract says), or a remaining schedule's principals,
        # less the principal its events took: what its instalments still owe in principal
        regime.principal - principal_taken,
        sum((sum(owed.values()) for owed in past), ZERO),
        sum((owed["fee"] + owed["penalty"] for owed in past), ZERO),
    )


def state_at(loan: dict, events: list[Event], d: dt.date) -> tuple[str, Decimal]:
    """METRICS §3: (state, principal outstanding) at the end of day d."""
    f = figures_at(loan, events, d)
    return f.state, f.principal_outstanding


def loans_at(folder: Path, d: dt.date) -> dict[str, Figures]:
    """Every loan's figures at the end of day d, by loan_id."""
    loans, events, _ = load(folder)
    return {loan_id: figures_at(loan, events.get(loan_id, []), d) for loan_id, loan in loans.items()}


def overdue_monthly(folder: Path, min_amount=None, max_amount=None) -> list[tuple]:
    """METRICS §4 at the data date, as rows of strings and ints like the report."""
    loans, events, data_date = load(folder)
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
            state, balance = state_at(loan, events.get(loan_id, []), s)
            if state in ACTIVE:
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

"""A small Apache Fineract book written as `\\copy (select * from T) to 'T.csv' csv header` writes it
(issue 39): the tables examples/mappings/fineract.toml reads, with Fineract's final PostgreSQL
columns in their physical order (the tenant Liquibase changelogs replayed: createTable, then
addColumn, dropColumn and renameColumn in changelog order; /work/notes/fineract.md §1), and its
codes (LoanStatus, LoanTransactionType, ChargeTimeType, reschedule request status).

What an export looks like, as PostgreSQL writes it: a header row; NULL as an empty unquoted field;
booleans `t`/`f`; dates `2024-02-10`; `timestamptz` as `2024-02-10 10:00:00+00` (microseconds
when there are any); decimal(19,6) amounts as `100.000000`; rates in percent (`12.000000` is
12 %). Fineract stores a **zero** amount as NULL in a schedule row's amounts and a transaction's
portions (`defaultToNullIfZero`): an empty field, not `0.000000`. A reversed transaction keeps
its row, with `is_reversed = t` and `reversed_on_date`; no reversal row is written.

The book (22 disbursed loans, 4 never disbursed; every figure of tests/golden/test_fineract.py is
worked out from it by hand there). Summary columns (`*_derived`) that the mapping does not read
are filled where they are simple (what was disbursed, repaid, written off, overpaid; an
instalment's `completed_derived` and `obligations_met_on_date`), and left NULL otherwise.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

COLUMNS = {
    "m_client": (
        "id", "account_no", "external_id", "status_enum", "sub_status", "activation_date", "office_joining_date",
        "office_id", "transfer_to_office_id", "staff_id", "firstname", "middlename", "lastname", "fullname",
        "display_name", "mobile_no", "is_staff", "gender_cv_id", "date_of_birth", "image_id",
        "closure_reason_cv_id", "closedon_date", "updated_by", "updated_on", "submittedon_date",
        "activatedon_userid", "closedon_userid", "default_savings_product", "default_savings_account",
        "client_type_cv_id", "client_classification_cv_id", "reject_reason_cv_id", "rejectedon_date",
        "rejectedon_userid", "withdraw_reason_cv_id", "withdrawn_on_date", "withdraw_on_userid",
        "reactivated_on_date", "reactivated_on_userid", "legal_form_enum", "reopened_on_date", "reopened_by_userid",
        "email_address", "proposed_transfer_date", "created_on_utc", "created_by", "last_modified_by",
        "last_modified_on_utc",
    ),
    "m_loan": (
        "id", "account_no", "external_id", "client_id", "group_id", "glim_id", "product_id", "fund_id",
        "loan_officer_id", "loanpurpose_cv_id", "loan_status_id", "loan_type_enum", "currency_code",
        "currency_digits", "currency_multiplesof", "principal_amount_proposed", "principal_amount",
        "approved_principal", "net_disbursal_amount", "arrearstolerance_amount", "is_floating_interest_rate",
        "interest_rate_differential", "nominal_interest_rate_per_period", "interest_period_frequency_enum",
        "annual_nominal_interest_rate", "interest_method_enum", "interest_calculated_in_period_enum",
        "allow_partial_period_interest_calcualtion", "term_frequency", "term_period_frequency_enum", "repay_every",
        "repayment_period_frequency_enum", "number_of_repayments", "grace_on_principal_periods",
        "recurring_moratorium_principal_periods", "grace_on_interest_periods", "grace_interest_free_periods",
        "amortization_method_enum", "submittedon_date", "approvedon_date", "approvedon_userid",
        "expected_disbursedon_date", "expected_firstrepaymenton_date", "interest_calculated_from_date",
        "disbursedon_date", "disbursedon_userid", "expected_maturedon_date", "maturedon_date", "closedon_date",
        "closedon_userid", "total_charges_due_at_disbursement_derived", "principal_disbursed_derived",
        "principal_repaid_derived", "principal_writtenoff_derived", "principal_outstanding_derived",
        "interest_charged_derived", "interest_repaid_derived", "interest_waived_derived",
        "interest_writtenoff_derived", "interest_outstanding_derived", "fee_charges_charged_derived",
        "fee_charges_repaid_derived", "fee_charges_waived_derived", "fee_charges_writtenoff_derived",
        "fee_charges_outstanding_derived", "penalty_charges_charged_derived", "penalty_charges_repaid_derived",
        "penalty_charges_waived_derived", "penalty_charges_writtenoff_derived",
        "penalty_charges_outstanding_derived", "total_expected_repayment_derived", "total_repayment_derived",
        "total_expected_costofloan_derived", "total_costofloan_derived", "total_waived_derived",
        "total_writtenoff_derived", "total_outstanding_derived", "total_overpaid_derived", "rejectedon_date",
        "rejectedon_userid", "rescheduledon_date", "rescheduledon_userid", "withdrawnon_date",
        "withdrawnon_userid", "writtenoffon_date", "loan_transaction_strategy_id",
        "sync_disbursement_with_meeting", "loan_counter", "loan_product_counter", "fixed_emi_amount",
        "max_outstanding_loan_balance", "grace_on_arrears_ageing", "is_npa", "total_recovered_derived",
        "accrued_till", "interest_recalcualated_on", "days_in_month_enum", "days_in_year_enum",
        "interest_recalculation_enabled", "guarantee_amount_derived", "create_standing_instruction_at_disbursement",
        "version", "writeoff_reason_cv_id", "loan_sub_status_id", "is_topup", "is_equal_amortization",
        "fixed_principal_percentage_per_installment", "created_on_utc", "created_by", "last_modified_by",
        "last_modified_on_utc", "principal_adjustments_derived", "is_fraud", "loan_transaction_strategy_code",
        "loan_transaction_strategy_name", "last_closed_business_date", "overpaidon_date", "is_charged_off",
        "charged_off_on_date", "charge_off_reason_cv_id", "charged_off_by_userid", "enable_down_payment",
        "disbursed_amount_percentage_for_down_payment", "enable_installment_level_delinquency",
        "enable_accrual_activity_posting", "enable_auto_repayment_for_down_payment", "loan_schedule_type",
        "loan_schedule_processing_type", "fee_adjustments_derived", "penalty_adjustments_derived", "fixed_length",
        "supported_interest_refund_types",
    ),
    "m_loan_repayment_schedule": (
        "id", "loan_id", "fromdate", "duedate", "installment", "principal_amount", "principal_completed_derived",
        "principal_writtenoff_derived", "interest_amount", "interest_completed_derived",
        "interest_writtenoff_derived", "interest_waived_derived", "accrual_interest_derived",
        "reschedule_interest_portion", "fee_charges_amount", "fee_charges_completed_derived",
        "fee_charges_writtenoff_derived", "fee_charges_waived_derived", "accrual_fee_charges_derived",
        "penalty_charges_amount", "penalty_charges_completed_derived", "penalty_charges_writtenoff_derived",
        "penalty_charges_waived_derived", "accrual_penalty_charges_derived", "total_paid_in_advance_derived",
        "total_paid_late_derived", "completed_derived", "obligations_met_on_date", "created_by", "created_date",
        "lastmodified_date", "last_modified_by", "recalculated_interest_component", "created_on_utc",
        "last_modified_on_utc", "is_additional", "credits_amount", "is_down_payment", "credited_fee",
        "credited_penalty", "is_re_aged",
    ),
    "m_loan_repayment_schedule_history": (
        "id", "loan_id", "loan_reschedule_request_id", "fromdate", "duedate", "installment", "principal_amount",
        "interest_amount", "fee_charges_amount", "penalty_charges_amount", "createdby_id", "created_date",
        "lastmodified_date", "lastmodifiedby_id", "version", "created_on_utc", "last_modified_on_utc",
    ),
    "m_loan_transaction": (
        "id", "loan_id", "office_id", "payment_detail_id", "is_reversed", "external_id", "transaction_type_enum",
        "transaction_date", "amount", "principal_portion_derived", "interest_portion_derived",
        "fee_charges_portion_derived", "penalty_charges_portion_derived", "overpayment_portion_derived",
        "unrecognized_income_portion", "outstanding_loan_balance_derived", "submitted_on_date",
        "manually_adjusted_or_reversed", "created_date", "created_by", "last_modified_by", "created_on_utc",
        "last_modified_on_utc", "charge_refund_charge_type", "reversal_external_id", "reversed_on_date",
    ),
    "m_loan_charge": (
        "id", "loan_id", "charge_id", "is_penalty", "charge_time_enum", "due_for_collection_as_of_date",
        "charge_calculation_enum", "charge_payment_mode_enum", "calculation_percentage", "calculation_on_amount",
        "charge_amount_or_percentage", "amount", "amount_paid_derived", "amount_waived_derived",
        "amount_writtenoff_derived", "amount_outstanding_derived", "is_paid_derived", "waived", "min_cap", "max_cap",
        "is_active", "external_id", "submitted_on_date", "created_on_utc", "last_modified_on_utc", "created_by",
        "last_modified_by",
    ),
    "m_loan_reschedule_request": (
        "id", "loan_id", "status_enum", "reschedule_from_installment", "reschedule_from_date", "recalculate_interest",
        "reschedule_reason_cv_id", "reschedule_reason_comment", "submitted_on_date", "submitted_by_user_id",
        "approved_on_date", "approved_by_user_id", "rejected_on_date", "rejected_by_user_id",
    ),
}

# LoanStatus (m_loan.loan_status_id)
SUBMITTED, APPROVED, ACTIVE, TRANSFER_IN_PROGRESS, WITHDRAWN, REJECTED = 100, 200, 300, 303, 400, 500
CLOSED, WRITTEN_OFF, OVERPAID = 600, 601, 700
# LoanTransactionType (m_loan_transaction.transaction_type_enum)
DISBURSEMENT, REPAYMENT, WAIVE_INTEREST, REPAYMENT_AT_DISBURSEMENT, WRITEOFF = 1, 2, 4, 5, 6
RECOVERY_REPAYMENT, WAIVE_CHARGES, ACCRUAL = 8, 9, 10
# ChargeTimeType (m_loan_charge.charge_time_enum)
AT_DISBURSEMENT, SPECIFIED_DUE_DATE, OVERDUE_INSTALLMENT = 1, 2, 9
STRATEGY = ("mifos-standard-strategy", "Penalties, Fees, Interest, Principal order")


def _money(value) -> str | None:
    return None if value is None else f"{Decimal(value):.6f}"


def _nz(value) -> str | None:
    """A schedule amount or a transaction portion: Fineract stores zero as NULL."""
    return None if value is None or Decimal(value) == 0 else _money(value)


def _bool(value: bool) -> str:
    return "t" if value else "f"


def _at(day: str, time: str = "10:00:00") -> str:
    """A timestamptz as PostgreSQL prints it in UTC."""
    return f"{day} {time}+00"


def _write(folder: Path, table: str, rows: list[dict]) -> Path:
    columns = COLUMNS[table]
    path = folder / f"{table}.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(columns)
        for row in rows:
            unknown = set(row) - set(columns)
            assert not unknown, (table, unknown)
            out.writerow(["" if row.get(c) is None else row[c] for c in columns])
    return path


# --- the book ------------------------------------------------------------------------------------

@dataclass
class Inst:
    due: str
    principal: Decimal
    interest: Decimal = Decimal(0)
    paid_on: str | None = None  # obligations_met_on_date (Fineract's own paid-on date)


@dataclass
class Loan:
    id: int
    client: int
    principal: int
    disbursed: str | None  # None: never disbursed
    schedule: list[Inst]
    status: int
    rate: int = 0  # annual, percent; FLAT interest (interest_method_enum 1) when not 0
    submitted: str | None = None
    closed: str | None = None
    overpaid: str | None = None
    written_off: str | None = None
    rescheduled: str | None = None  # m_loan.rescheduledon_date: the business date of the approval


@dataclass
class Tx:
    loan: int
    type: int
    date: str
    amount: Decimal
    principal: Decimal = Decimal(0)
    interest: Decimal = Decimal(0)
    fee: Decimal = Decimal(0)
    penalty: Decimal = Decimal(0)
    overpayment: Decimal = Decimal(0)
    reversed_on: str | None = None
    submitted: str | None = None  # the business date it was entered (default: its date)
    id: int = 0


@dataclass
class Charge:
    id: int
    loan: int
    penalty: bool
    time: int
    due: str | None
    amount: Decimal
    submitted: str
    active: bool = True
    modified: str | None = None  # last_modified_on_utc (a removal's time)
    waived: str | None = None  # the business date it was waived
    paid: bool = False


@dataclass
class Request:
    id: int
    loan: int
    status: int
    from_installment: int
    from_date: str
    submitted: str
    approved: str | None = None
    rejected: str | None = None


def _threes(first_due_month: int, day: int, principal: int, interest: int = 0, paid: tuple = (None, None, None),
            months: int = 3) -> list[Inst]:
    return [Inst(f"2024-{first_due_month + k:02d}-{day:02d}", Decimal(principal), Decimal(interest), paid[k])
            for k in range(months)]


def _inst(due: str, principal, interest=0, paid=None) -> Inst:
    return Inst(due, Decimal(principal), Decimal(interest), paid)


@dataclass
class Book:
    clients: list[dict] = field(default_factory=list)
    loans: list[Loan] = field(default_factory=list)
    txs: list[Tx] = field(default_factory=list)
    charges: list[Charge] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    # loan -> its schedule before the reschedule (m_loan_repayment_schedule_history, version 1)
    before: dict[int, list[Inst]] = field(default_factory=dict)


def book(as_of: str | None = None) -> Book:
    """The loans, by the story test_fineract.py's docstring tells (dates 2024); ``as_of``: the book
    as an export taken at the end of that day would show it (what was entered by then)."""
    b = _book()
    return b if as_of is None else _as_of(b, as_of)


def _as_of(b: Book, day: str) -> Book:
    """What the tables held at the end of ``day``: records entered later are not there yet, and
    later changes (a closure, a write-off, a reversal, a waiver, a removal, a reschedule's
    approval) have not happened."""
    def later(d: str | None) -> bool:
        return d is not None and d > day

    loans = []
    for ln in b.loans:
        if (ln.submitted or ln.disbursed) > day:
            continue
        # a back-dated transaction entered after the day (L22's of 03-01, entered 04-03) had not happened
        backdated = min((t.date for t in b.txs if t.loan == ln.id and later(t.submitted) and not later(t.date)),
                        default=None)
        status = ln.status
        ended = ln.closed or ln.overpaid or ln.written_off
        if status in (CLOSED, OVERPAID, WRITTEN_OFF) and (later(ended) or backdated):
            status, ended = ACTIVE, None
        schedule = ln.schedule
        if later(ln.rescheduled):
            schedule = b.before[ln.id]
        schedule = [Inst(i.due, i.principal, i.interest,
                         None if later(i.paid_on) or (backdated and i.paid_on and i.paid_on >= backdated) else i.paid_on)
                    for i in schedule]
        loans.append(Loan(ln.id, ln.client, ln.principal, ln.disbursed, schedule, status, ln.rate, ln.submitted,
                          ended and ln.closed, ended and ln.overpaid, ended and ln.written_off,
                          None if later(ln.rescheduled) else ln.rescheduled))
    txs = [Tx(t.loan, t.type, t.date, t.amount, t.principal, t.interest, t.fee, t.penalty, t.overpayment,
              None if later(t.reversed_on) else t.reversed_on, t.submitted, t.id)
           for t in b.txs if not later(t.submitted or t.date)]
    charges = [Charge(c.id, c.loan, c.penalty, c.time, c.due, c.amount, c.submitted,
                      c.active or later(c.modified[:10]), None if c.active or later(c.modified[:10]) else c.modified,
                      None if later(c.waived) else c.waived, c.paid)
               for c in b.charges if not later(c.submitted)]
    requests = [Request(r.id, r.loan, 100 if later(r.approved or r.rejected) else r.status, r.from_installment,
                        r.from_date, r.submitted, None if later(r.approved) else r.approved,
                        None if later(r.rejected) else r.rejected)
                for r in b.requests if not later(r.submitted)]
    before = {k: v for k, v in b.before.items() if any(ln.id == k and ln.rescheduled for ln in loans)}
    return Book(b.clients, loans, txs, charges, requests, before)


def _book() -> Book:
    b = Book()
    names = ["Ana Gómez", "Bruno Díaz", "Carla Ruiz", "Dario Méndez", "Elena Soto", "Tacos Doña Rosa, S.A.",
             "Gael Ortiz", "Hilda Paz", "Iván Rey", "Julia Mora"]
    for i, name in enumerate(names, start=1):
        b.clients.append({"id": i, "name": name, "joined": f"2023-12-{i + 10:02d}",
                          # one client written before Fineract 1.6 stamped rows (an upgraded database)
                          "modified": None if i == 10 else _at(f"2024-01-{i:02d}", "08:30:00.512")})
    D = Decimal
    L, T, C = b.loans.append, b.txs.append, b.charges.append

    def pay(loan, day, amount, principal=None, interest=0, fee=0, penalty=0, overpayment=0, kind=REPAYMENT,
            reversed_on=None, submitted=None):
        T(Tx(loan, kind, day, D(amount), D(amount if principal is None else principal), D(interest), D(fee),
             D(penalty), D(overpayment), reversed_on, submitted))

    # L1 plain, repaid on time: closed 04-10
    L(Loan(1, 1, 300, "2024-01-10", _threes(2, 10, 100, paid=("2024-02-10", "2024-03-10", "2024-04-10")), CLOSED,
           closed="2024-04-10"))
    for day in ("2024-02-10", "2024-03-10", "2024-04-10"):
        pay(1, day, 100)
    # L2 a fee of 15 due with instalment 1, paid with it
    L(Loan(2, 1, 300, "2024-01-15", _threes(2, 15, 100, paid=("2024-02-15", "2024-03-15", None)), ACTIVE))
    C(Charge(1, 2, False, SPECIFIED_DUE_DATE, "2024-02-15", D(15), "2024-02-01", paid=True))
    pay(2, "2024-02-15", 115, principal=100, fee=15)
    pay(2, "2024-03-15", 100)
    # L3 a late-payment penalty of 10 (overdue instalment 1; due 02-13: with instalment 2)
    L(Loan(3, 2, 300, "2024-01-10", _threes(2, 10, 100, paid=("2024-02-20", None, None)), ACTIVE))
    C(Charge(2, 3, True, OVERDUE_INSTALLMENT, "2024-02-13", D(10), "2024-02-13", paid=True))
    pay(3, "2024-02-20", 100)
    pay(3, "2024-03-10", 100, principal=90, penalty=10)
    # L4 flat 12 %: 400 + 12 a month; instalment 1's interest waived
    L(Loan(4, 2, 1200, "2024-01-05", _threes(2, 5, 400, 12, paid=("2024-02-05", "2024-03-05", "2024-04-05")), CLOSED,
           rate=12, closed="2024-04-05"))
    T(Tx(4, WAIVE_INTEREST, "2024-02-05", D(12), interest=D(12)))
    pay(4, "2024-02-05", 400)
    for day in ("2024-02-05", "2024-03-05", "2024-04-05"):
        T(Tx(4, ACCRUAL, day, D(12), interest=D(12)))
    pay(4, "2024-03-05", 412, principal=400, interest=12)
    pay(4, "2024-04-05", 412, principal=400, interest=12)
    # L5 a fee of 20 due with instalment 2, waived (WAIVE_CHARGES) before it fell due
    L(Loan(5, 3, 300, "2024-01-20", _threes(2, 20, 100, paid=("2024-02-20", "2024-03-20", None)), ACTIVE))
    C(Charge(3, 5, False, SPECIFIED_DUE_DATE, "2024-03-20", D(20), "2024-01-25", waived="2024-03-18"))
    pay(5, "2024-02-20", 100)
    T(Tx(5, WAIVE_CHARGES, "2024-03-18", D(20), fee=D(20)))
    pay(5, "2024-03-20", 100)
    # L6 a late-payment penalty of 15 (due 02-23: with instalment 2), waived on business date 02-28
    # (Fineract dates the waiver by the charge's due date when that is past)
    L(Loan(6, 3, 300, "2024-01-20", _threes(2, 20, 100, paid=("2024-02-25", "2024-03-20", "2024-04-20")), CLOSED,
           closed="2024-04-20"))
    C(Charge(4, 6, True, OVERDUE_INSTALLMENT, "2024-02-23", D(15), "2024-02-23", waived="2024-02-28"))
    pay(6, "2024-02-25", 100)
    T(Tx(6, WAIVE_CHARGES, "2024-02-23", D(15), penalty=D(15), submitted="2024-02-28"))
    pay(6, "2024-03-20", 100)
    pay(6, "2024-04-20", 100)
    # L7 a repayment reversed (a bounced cheque), paid again 02-22
    L(Loan(7, 4, 300, "2024-01-12", _threes(2, 12, 100, paid=("2024-02-22", "2024-03-12", None)), ACTIVE))
    pay(7, "2024-02-12", 100, reversed_on="2024-02-16")
    pay(7, "2024-02-22", 100)
    pay(7, "2024-03-12", 100)
    # L8 written off 05-10 with 400 outstanding; a recovery of 150 on 06-12
    L(Loan(8, 4, 600, "2024-01-08", _threes(2, 8, 200, paid=("2024-02-08", None, None)), WRITTEN_OFF,
           closed="2024-05-10", written_off="2024-05-10"))
    pay(8, "2024-02-08", 200)
    T(Tx(8, WRITEOFF, "2024-05-10", D(400), principal=D(400)))
    pay(8, "2024-06-12", 150, kind=RECOVERY_REPAYMENT, principal=0)
    # L9 never paid, written off 05-28; a recovery of 60 reversed, then 60 again
    L(Loan(9, 5, 300, "2024-01-25", _threes(2, 25, 100), WRITTEN_OFF, closed="2024-05-28",
           written_off="2024-05-28"))
    T(Tx(9, WRITEOFF, "2024-05-28", D(300), principal=D(300)))
    pay(9, "2024-06-05", 60, kind=RECOVERY_REPAYMENT, principal=0, reversed_on="2024-06-06")
    pay(9, "2024-06-07", 60, kind=RECOVERY_REPAYMENT, principal=0)
    # L10 repaid early, all of it on 02-20
    L(Loan(10, 5, 300, "2024-02-01", _threes(3, 1, 100, paid=("2024-02-20",) * 3), CLOSED, closed="2024-02-20"))
    pay(10, "2024-02-20", 300)
    # L11 rescheduled: 6 x 100 due the 5th; 03-05 missed; a request approved on 2024-03-22 (entered on
    # business date 03-25) moves instalments 2-6 a month later; the new schedule keeps instalment 1
    L(Loan(11, 6, 600, "2024-01-05",
           [_inst("2024-02-05", 100, paid="2024-02-05"), _inst("2024-04-05", 100, paid="2024-04-05"),
            _inst("2024-05-05", 100, paid="2024-05-05"), _inst("2024-06-05", 100), _inst("2024-07-05", 100),
            _inst("2024-08-05", 100)], ACTIVE, rescheduled="2024-03-25"))
    b.before[11] = [_inst("2024-02-05", 100, paid="2024-02-05")] + [
        _inst(f"2024-{m:02d}-05", 100) for m in range(3, 8)]
    b.requests.append(Request(1, 11, 200, 2, "2024-03-05", "2024-03-20", approved="2024-03-22"))
    for day in ("2024-02-05", "2024-04-05", "2024-05-05"):
        pay(11, day, 100)
    # L12 a rejected and a pending reschedule request: its schedule is the one it was issued with
    L(Loan(12, 6, 300, "2024-02-10", _threes(3, 10, 100, paid=("2024-03-10", "2024-04-10", None)), ACTIVE))
    b.requests.append(Request(2, 12, 500, 2, "2024-04-10", "2024-03-15", rejected="2024-03-16"))
    b.requests.append(Request(3, 12, 100, 3, "2024-05-10", "2024-05-20"))
    pay(12, "2024-03-10", 100)
    pay(12, "2024-04-10", 100)
    # L13 overpaid by 50 on 03-18
    L(Loan(13, 7, 200, "2024-01-18", _threes(2, 18, 100, paid=("2024-02-18", "2024-03-18"), months=2), OVERPAID,
           overpaid="2024-03-18"))
    pay(13, "2024-02-18", 100)
    pay(13, "2024-03-18", 150, principal=100, overpayment=50)
    # L14 flat 12 %: 200 + 6 a month; instalment 2 paid late (04-08), a penalty of 10 due 04-04
    # (with instalment 3); closed 05-01
    L(Loan(14, 7, 600, "2024-02-01", _threes(3, 1, 200, 6, paid=("2024-03-01", "2024-04-08", "2024-05-01")), CLOSED,
           rate=12, closed="2024-05-01"))
    C(Charge(5, 14, True, OVERDUE_INSTALLMENT, "2024-04-04", D(10), "2024-04-04", paid=True))
    pay(14, "2024-03-01", 206, principal=200, interest=6)
    pay(14, "2024-04-08", 206, principal=200, interest=6)
    pay(14, "2024-05-01", 216, principal=200, interest=6, penalty=10)
    for day in ("2024-03-01", "2024-04-01", "2024-05-01"):
        T(Tx(14, ACCRUAL, day, D(6), interest=D(6)))
    # L15 a fee of 25 with instalment 1; 100 paid: fee first, 75 principal
    L(Loan(15, 8, 300, "2024-03-01", _threes(4, 1, 100), ACTIVE))
    C(Charge(6, 15, False, SPECIFIED_DUE_DATE, "2024-04-01", D(25), "2024-03-01", paid=True))
    pay(15, "2024-04-01", 100, principal=75, fee=25)
    # L16 a fee of 10 with instalment 1; nothing paid
    L(Loan(16, 8, 300, "2024-03-05", _threes(4, 5, 100), ACTIVE))
    C(Charge(7, 16, False, SPECIFIED_DUE_DATE, "2024-04-05", D(10), "2024-03-05"))
    # L17 a fee of 30 added 02-10 and removed 02-12 (is_active = f): not in the schedule any more
    L(Loan(17, 9, 300, "2024-02-05", _threes(3, 5, 100, paid=("2024-03-05", "2024-04-05", None)), ACTIVE))
    C(Charge(8, 17, False, SPECIFIED_DUE_DATE, "2024-03-05", D(30), "2024-02-10", active=False,
             modified=_at("2024-02-12", "10:15:00")))
    pay(17, "2024-03-05", 100)
    pay(17, "2024-04-05", 100)
    # L18 flat 12 %: 300 + 9 a month, a disbursement fee of 9 paid at disbursement; closed 06-15
    L(Loan(18, 9, 900, "2024-03-15", _threes(4, 15, 300, 9, paid=("2024-04-15", "2024-05-15", "2024-06-15")), CLOSED,
           rate=12, closed="2024-06-15"))
    C(Charge(9, 18, False, AT_DISBURSEMENT, "2024-03-15", D(9), "2024-03-15", paid=True))
    T(Tx(18, REPAYMENT_AT_DISBURSEMENT, "2024-03-15", D(9), fee=D(9)))
    for day in ("2024-04-15", "2024-05-15", "2024-06-15"):
        pay(18, day, 309, principal=300, interest=9)
    # L19 flat 12 %: 400 + 12 a month; one instalment paid; written off 04-30 (800 principal, 24 interest)
    L(Loan(19, 10, 1200, "2024-01-10", _threes(2, 10, 400, 12, paid=("2024-02-10", None, None)), WRITTEN_OFF,
           rate=12, closed="2024-04-30", written_off="2024-04-30"))
    pay(19, "2024-02-10", 412, principal=400, interest=12)
    T(Tx(19, WRITEOFF, "2024-04-30", D(824), principal=D(800), interest=D(24)))
    # L20 in an office transfer (303)
    L(Loan(20, 10, 300, "2024-02-15", _threes(3, 15, 100, paid=("2024-03-15", "2024-04-15", None)),
           TRANSFER_IN_PROGRESS))
    pay(20, "2024-03-15", 100)
    pay(20, "2024-04-15", 100)
    # L21 flat 12 %: 200 + 6 a month; an interest waiver of 6 on 03-20 undone on 03-22; 05-01 short by 6
    L(Loan(21, 1, 600, "2024-03-01", _threes(4, 1, 200, 6, paid=("2024-04-01", None, None)), ACTIVE, rate=12))
    T(Tx(21, WAIVE_INTEREST, "2024-03-20", D(6), interest=D(6), reversed_on="2024-03-22"))
    pay(21, "2024-04-01", 206, principal=200, interest=6)
    pay(21, "2024-05-01", 200, principal=194, interest=6)
    # L22 a replay: 150 paid 04-01; on 04-03 a repayment of 100 dated 03-01 is entered; Fineract
    # re-processes, reverses the 04-01 one (its portions change) and writes a copy (new id)
    L(Loan(22, 2, 200, "2024-02-01", _threes(3, 1, 100, paid=("2024-03-01", "2024-04-01"), months=2), OVERPAID,
           overpaid="2024-03-01"))
    pay(22, "2024-04-01", 150, reversed_on="2024-04-03")
    pay(22, "2024-03-01", 100, submitted="2024-04-03")
    pay(22, "2024-04-01", 150, principal=100, overpayment=50, submitted="2024-04-03")
    # never disbursed: submitted, approved, withdrawn by the client, rejected (schedules all the same)
    for loan, client, status in ((23, 3, SUBMITTED), (24, 4, APPROVED), (25, 5, WITHDRAWN), (26, 6, REJECTED)):
        L(Loan(loan, client, 300, None, _threes(7, 1, 100), status, submitted="2024-05-20"))

    # ids as Fineract gives them: in the order entered (a loan's disbursement first on its day)
    disbursals = [Tx(ln.id, DISBURSEMENT, ln.disbursed, Decimal(ln.principal), submitted=ln.disbursed)
                  for ln in b.loans if ln.disbursed]
    b.txs = sorted(disbursals + b.txs, key=lambda t: (t.submitted or t.date, t.type != DISBURSEMENT, t.loan))
    for i, t in enumerate(b.txs, start=1):
        t.id = i
    return b


# --- the tables ----------------------------------------------------------------------------------

def _client_rows(b: Book) -> list[dict]:
    rows = []
    for c in b.clients:
        first, _, last = c["name"].partition(" ")
        company = "," in c["name"]
        rows.append({
            "id": c["id"], "account_no": f"{c['id']:09d}", "status_enum": 300, "activation_date": c["joined"],
            "office_joining_date": c["joined"], "office_id": 1, "fullname": c["name"] if company else None,
            "firstname": None if company else first, "lastname": None if company else last,
            "display_name": c["name"], "mobile_no": f"+52155{c['id']:08d}", "is_staff": "f",
            "date_of_birth": None if company else f"19{80 + c['id']}-0{1 + c['id'] % 9}-1{c['id'] % 10}",
            "submittedon_date": c["joined"], "activatedon_userid": 1, "legal_form_enum": 2 if company else 1,
            "email_address": f"client{c['id']}@example.com",
            "created_on_utc": c["modified"] and _at(c["joined"], "08:00:00"), "created_by": c["modified"] and 1,
            "last_modified_by": c["modified"] and 1, "last_modified_on_utc": c["modified"],
        })
    return rows


def _charge_in(loan: Loan, charge: Charge, k: int) -> bool:
    """Is the active charge due in instalment k's period (fromdate, duedate] (the first: [..])?"""
    if not charge.active or charge.time not in (SPECIFIED_DUE_DATE, OVERDUE_INSTALLMENT) or charge.loan != loan.id:
        return False
    start = loan.disbursed if k == 0 else loan.schedule[k - 1].due
    due = loan.schedule[k].due
    return (start <= charge.due if k == 0 else start < charge.due) and charge.due <= due


def _loan_rows(b: Book) -> list[dict]:
    rows = []
    for ln in b.loans:
        txs = [t for t in b.txs if t.loan == ln.id and not t.reversed_on]
        repaid = [t for t in txs if t.type in (REPAYMENT, RECOVERY_REPAYMENT)]
        principal_repaid = sum((t.principal for t in repaid), Decimal(0))
        written_off = sum((t.principal for t in txs if t.type == WRITEOFF), Decimal(0))
        interest = sum((i.interest for i in ln.schedule), Decimal(0))
        first_due = ln.schedule[0].due
        disbursed = ln.disbursed is not None
        submitted = ln.submitted or str(dt.date.fromisoformat(ln.disbursed) - dt.timedelta(days=3))
        rate = Decimal(ln.rate)
        rows.append({
            "id": ln.id, "account_no": f"{ln.id:09d}", "client_id": ln.client, "product_id": 1 if ln.rate else 2,
            "loan_status_id": ln.status, "loan_type_enum": 1, "currency_code": "USD", "currency_digits": 2,
            "currency_multiplesof": 0, "principal_amount_proposed": _money(ln.principal),
            "principal_amount": _money(ln.principal), "approved_principal": _money(ln.principal),
            "net_disbursal_amount": _money(ln.principal), "is_floating_interest_rate": "f",
            "interest_rate_differential": _money(0), "nominal_interest_rate_per_period": _money(rate),
            "interest_period_frequency_enum": 3, "annual_nominal_interest_rate": _money(rate),
            "interest_method_enum": 1 if ln.rate else 0, "interest_calculated_in_period_enum": 1,
            "allow_partial_period_interest_calcualtion": "f", "term_frequency": len(ln.schedule),
            "term_period_frequency_enum": 2, "repay_every": 1, "repayment_period_frequency_enum": 2,
            "number_of_repayments": len(ln.schedule), "amortization_method_enum": 1,
            "submittedon_date": submitted,
            "approvedon_date": None if ln.status in (SUBMITTED, WITHDRAWN, REJECTED) else submitted,
            "approvedon_userid": None if ln.status in (SUBMITTED, WITHDRAWN, REJECTED) else 1,
            "expected_disbursedon_date": ln.disbursed or "2024-06-01", "expected_firstrepaymenton_date": first_due,
            "disbursedon_date": ln.disbursed, "disbursedon_userid": 1 if disbursed else None,
            "expected_maturedon_date": ln.schedule[-1].due, "maturedon_date": ln.closed,
            "closedon_date": ln.closed, "closedon_userid": 1 if ln.closed else None,
            "total_charges_due_at_disbursement_derived": _money(sum(
                (c.amount for c in b.charges if c.loan == ln.id and c.time == AT_DISBURSEMENT), Decimal(0))),
            "principal_disbursed_derived": _money(ln.principal if disbursed else 0),
            "principal_repaid_derived": _money(principal_repaid),
            "principal_writtenoff_derived": _money(written_off),
            "principal_outstanding_derived": _money(
                (ln.principal - principal_repaid - written_off) if disbursed and ln.status != OVERPAID else 0),
            "interest_charged_derived": _money(interest if disbursed else 0),
            **{f"{k}_derived": _money(0) for k in (
                "interest_repaid", "interest_waived", "interest_writtenoff", "interest_outstanding",
                "fee_charges_charged", "fee_charges_repaid", "fee_charges_waived", "fee_charges_writtenoff",
                "fee_charges_outstanding", "penalty_charges_charged", "penalty_charges_repaid",
                "penalty_charges_waived", "penalty_charges_writtenoff", "penalty_charges_outstanding",
                "total_expected_repayment", "total_repayment", "total_expected_costofloan", "total_costofloan",
                "total_waived", "total_writtenoff", "total_outstanding")},
            "total_overpaid_derived": _money(sum((t.overpayment for t in txs), Decimal(0))) if ln.status == OVERPAID
            else None,
            "rejectedon_date": submitted if ln.status == REJECTED else None,
            "withdrawnon_date": submitted if ln.status == WITHDRAWN else None,
            "rescheduledon_date": ln.rescheduled, "rescheduledon_userid": 1 if ln.rescheduled else None,
            "writtenoffon_date": ln.written_off, "loan_transaction_strategy_id": 1, "loan_counter": 1,
            "loan_product_counter": 1, "is_npa": "f", "days_in_month_enum": 1, "days_in_year_enum": 1,
            "interest_recalculation_enabled": "f", "version": 1, "is_topup": "f", "is_equal_amortization": "f",
            "created_on_utc": _at(submitted, "09:00:00"), "created_by": 1, "last_modified_by": 1,
            # rewritten at every transaction: it dates nothing
            "last_modified_on_utc": _at(max([submitted] + [t.submitted or t.date for t in txs]), "16:45:12.00431"),
            "principal_adjustments_derived": _money(0), "is_fraud": "f",
            "loan_transaction_strategy_code": STRATEGY[0], "loan_transaction_strategy_name": STRATEGY[1],
            "overpaidon_date": ln.overpaid, "is_charged_off": "f", "enable_down_payment": "f",
            "enable_installment_level_delinquency": "f", "enable_accrual_activity_posting": "f",
            "enable_auto_repayment_for_down_payment": "f", "loan_schedule_type": "CUMULATIVE",
            "loan_schedule_processing_type": "HORIZONTAL", "fee_adjustments_derived": _money(0),
            "penalty_adjustments_derived": _money(0),
        })
    return rows


def _schedule_rows(b: Book) -> tuple[list[dict], list[dict]]:
    """The current schedule rows, and the history (the schedule archived by a reschedule)."""
    rows, history = [], []
    later = []  # rescheduled loans' rows are re-inserted at the approval: new, higher ids
    for ln in b.loans:
        created = _at(ln.disbursed or ln.submitted, "09:00:00")
        for k, inst in enumerate(ln.schedule):
            fee = sum((c.amount for c in b.charges if not c.penalty and _charge_in(ln, c, k)), Decimal(0))
            penalty = sum((c.amount for c in b.charges if c.penalty and _charge_in(ln, c, k)), Decimal(0))
            waived_fee = sum((c.amount for c in b.charges if not c.penalty and c.waived and _charge_in(ln, c, k)),
                             Decimal(0))
            waived_penalty = sum((c.amount for c in b.charges if c.penalty and c.waived and _charge_in(ln, c, k)),
                                 Decimal(0))
            waived_interest = Decimal(12) if (ln.id, k) == (4, 0) else Decimal(0)
            done = inst.paid_on is not None
            row = {
                "loan_id": ln.id, "fromdate": (ln.disbursed or "2024-06-01") if k == 0 else ln.schedule[k - 1].due,
                "duedate": inst.due, "installment": k + 1, "principal_amount": _nz(inst.principal),
                "principal_completed_derived": _nz(inst.principal) if done else None,
                "interest_amount": _nz(inst.interest),
                "interest_completed_derived": _nz(inst.interest - waived_interest) if done else None,
                "interest_waived_derived": _nz(waived_interest),
                "fee_charges_amount": _nz(fee), "fee_charges_completed_derived": _nz(fee - waived_fee) if done else None,
                "fee_charges_waived_derived": _nz(waived_fee), "penalty_charges_amount": _nz(penalty),
                "penalty_charges_completed_derived": _nz(penalty - waived_penalty) if done else None,
                "penalty_charges_waived_derived": _nz(waived_penalty),
                "completed_derived": _bool(done), "obligations_met_on_date": inst.paid_on,
                "created_by": 1, "last_modified_by": 1, "recalculated_interest_component": "f",
                "created_on_utc": created,
                # touched by every repayment that pays it: it dates no reschedule
                "last_modified_on_utc": _at(inst.paid_on, "11:20:41.337") if done else created,
                "is_additional": "f", "is_down_payment": "f", "is_re_aged": "f",
            }
            (later if ln.rescheduled else rows).append(row)
        if ln.id in b.before:
            request = next(r for r in b.requests if r.loan == ln.id and r.status == 200)
            for k, inst in enumerate(b.before[ln.id]):
                history.append({
                    "id": len(history) + 1, "loan_id": ln.id, "loan_reschedule_request_id": request.id,
                    "fromdate": ln.disbursed if k == 0 else b.before[ln.id][k - 1].due, "duedate": inst.due,
                    "installment": k + 1, "principal_amount": _nz(inst.principal), "interest_amount": _nz(inst.interest),
                    "version": 1, "created_on_utc": created, "last_modified_on_utc": _at(ln.rescheduled, "14:30:00"),
                })
            for row in later[-len(ln.schedule):]:
                row["created_on_utc"] = _at(ln.rescheduled, "14:30:00")
                if row["completed_derived"] == "f" or row["obligations_met_on_date"] < ln.rescheduled:
                    row["last_modified_on_utc"] = row["created_on_utc"]
    for i, row in enumerate(rows + later, start=1):
        row["id"] = i
    return rows + later, history


def _transaction_rows(b: Book) -> list[dict]:
    rows = []
    for t in b.txs:
        entered = t.submitted or t.date
        stamp = _at(entered, f"10:{t.id % 60:02d}:00")
        rows.append({
            "id": t.id, "loan_id": t.loan, "office_id": 1, "is_reversed": _bool(t.reversed_on is not None),
            "transaction_type_enum": t.type, "transaction_date": t.date, "amount": _money(t.amount),
            "principal_portion_derived": _nz(t.principal), "interest_portion_derived": _nz(t.interest),
            "fee_charges_portion_derived": _nz(t.fee), "penalty_charges_portion_derived": _nz(t.penalty),
            "overpayment_portion_derived": _nz(t.overpayment), "submitted_on_date": entered,
            "manually_adjusted_or_reversed": _bool(t.reversed_on is not None), "created_by": 1, "last_modified_by": 1,
            "created_on_utc": stamp, "last_modified_on_utc": _at(t.reversed_on, "12:00:00") if t.reversed_on else stamp,
            "reversed_on_date": t.reversed_on,
        })
    return rows


def _charge_rows(b: Book) -> list[dict]:
    rows = []
    for c in b.charges:
        settled = c.paid or c.waived
        rows.append({
            "id": c.id, "loan_id": c.loan, "charge_id": {SPECIFIED_DUE_DATE: 1, OVERDUE_INSTALLMENT: 2,
                                                        AT_DISBURSEMENT: 3}[c.time],
            "is_penalty": _bool(c.penalty), "charge_time_enum": c.time, "due_for_collection_as_of_date": c.due,
            "charge_calculation_enum": 1, "charge_payment_mode_enum": 0, "charge_amount_or_percentage": _money(c.amount),
            "amount": _money(c.amount), "amount_paid_derived": _money(c.amount) if c.paid else None,
            "amount_waived_derived": _money(c.amount) if c.waived else None,
            "amount_outstanding_derived": _money(0 if settled or not c.active else c.amount),
            "is_paid_derived": _bool(c.paid), "waived": _bool(c.waived), "is_active": _bool(c.active),
            "submitted_on_date": c.submitted, "created_on_utc": _at(c.submitted, "09:30:00"),
            "last_modified_on_utc": c.modified or _at(c.submitted, "09:30:00"), "created_by": 1, "last_modified_by": 1,
        })
    return rows


def _request_rows(b: Book) -> list[dict]:
    return [{"id": r.id, "loan_id": r.loan, "status_enum": r.status, "reschedule_from_installment": r.from_installment,
             "reschedule_from_date": r.from_date, "recalculate_interest": "f", "submitted_on_date": r.submitted,
             "submitted_by_user_id": 1, "approved_on_date": r.approved, "approved_by_user_id": r.approved and 1,
             "rejected_on_date": r.rejected, "rejected_by_user_id": r.rejected and 1} for r in b.requests]


def write_export(folder: Path, as_of: str | None = None, history: bool = True) -> Path:
    """The book's tables as CSV files in ``folder`` (created), as exported at the end of ``as_of``
    (default: after its last event, 2024-06-15); ``history``: with
    m_loan_repayment_schedule_history.csv. Returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    b = book(as_of)
    schedule, archived = _schedule_rows(b)
    _write(folder, "m_client", _client_rows(b))
    _write(folder, "m_loan", _loan_rows(b))
    _write(folder, "m_loan_repayment_schedule", schedule)
    if history:
        _write(folder, "m_loan_repayment_schedule_history", archived)
    _write(folder, "m_loan_transaction", _transaction_rows(b))
    _write(folder, "m_loan_charge", _charge_rows(b))
    _write(folder, "m_loan_reschedule_request", _request_rows(b))
    return folder

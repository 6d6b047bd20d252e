"""Synthetic portfolios that follow the input contract, with a behaviour model per client.

Everything is vectorised: numpy draws numbers per client, loan and instalment (loops run over
instalment positions or pools, never over rows), and DuckDB formats and writes the files.
Deterministic for a seed.

The behaviour model (also used by `notify simulate`):
- reliable: pays on or a little before the due date, sometimes prepays the whole loan;
- forgetful: often a few days late, responds to reminders;
- struggler: late and partial, catches up slowly, sometimes stops;
- defaulter: pays a few instalments, then stops;
- fraud: never pays.
Risk and fraud scores are drawn from the type, so they predict behaviour.

Servicing events (contract v3), at rates a consumer lender sees; about 11-13 % of loans have one:
- late-payment penalties: an instalment of an installment, cash or payday loan still unpaid 15 days
  after its due date (LATE_FEE_GRACE_DAYS) is charged 5 % of the instalment, at least 15.00 and at
  most 250.00, by the nightly run of that day (02:00-03:00 UTC), naming the instalment. BNPL charges
  no late fee. None from 90 days after the first instalment never paid (non-accrual; write-off
  comes at 180), and at most 4 per loan. About 10 % of loans get one.
- a service fee (5.00, 10.00, 15.00 or 25.00: a paper statement, a changed due date) on one
  instalment of 1.5-2 % of loans, on its statement day (10 days before it is due), before it is paid.
- waivers: 20 % of penalties are waived in full (`waive_penalty` naming the instalment) some time
  after they are charged, before the loan's next payment and within 20 days; with 15 % of those,
  when nothing has yet been paid towards it, the instalment's interest too (`waive_interest`).
- 3 % of penalties are charged in error and reversed 1-6 days later.
- recoveries: 50 % of the written-off loans of reliable and forgetful clients, 45 % of strugglers',
  35 % of defaulters' and 5 % of fraudsters' pay back, from 15-120 days after the write-off, 1-4
  payments 20-60 days apart, together 10-50 % of what the loan owed: recoveries on about 28 % of
  written-off loans, 10-20 % of the written-off amount within a year (fraud weighs on both).
- restructurings: a client of an installment or cash loan who falls more than 7 days behind on an
  instalment after paying at least one (RESTRUCTURE_LATE_DAYS) is offered a new schedule 8-14 days
  after that due date, before the first penalty: 25 % of forgetful clients, 50 % of strugglers and
  20 % of defaulters who qualify take it, about 2 % of installment and cash loans (0.9 % of all).
  The principal outstanding is rescheduled as a new annuity at the loan's rate over the months that
  were left plus 3 or 6, the first instalment a month after the restructuring (contract v3: a loan version with
  `restructured_at` and `repayment: schedule`, and instalment records with that `effective_from`:
  a *remaining* schedule). Afterwards 15 % of forgetful clients, 40 % of strugglers and 80 % of
  defaulters stop paying again (after 0 or more new instalments; written off 180 days after the
  first one missed), the others pay each new instalment within a few days of its due date. Only
  loans with no charge, waiver or bounced payment before the restructuring qualify; what the
  original schedule would have brought after it (payments, penalties, waivers, calls) is replaced.
The payment that settles an instalment (its last part) also pays the charges standing on it (a
penalty or fee not waived or reversed) and is that much smaller when its interest was waived: a
client who pays pays everything owed, so the loan closes as it would without them, and a loan's
`closed` version follows its charges and waivers too. Everything drawn for them comes from a
generator of their own (seed, 39), and for restructurings (seed, 40): the other records of a seed
are the same as before they existed, except the amounts of the payments that pay them, the
recoveries added after the others (ids after the reversals'), what restructurings replace, and the
logins after the calls they leave out.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from loanwatch.geo import REGIONS

LOCALES = ("es_MX", "ru_RU", "en_US")
LOCALE_WEIGHTS = (0.45, 0.30, 0.25)
LANGUAGES = {"es_MX": "es", "ru_RU": "ru", "en_US": "en"}
PHONE_PREFIX = {"es_MX": "+52", "ru_RU": "+7", "en_US": "+1"}
EMAIL_DOMAIN = {"es_MX": "correo.mx", "ru_RU": "pochta.ru", "en_US": "mail.example.com"}

TYPES = ("reliable", "forgetful", "struggler", "defaulter", "fraud")
TYPE_WEIGHTS = (0.55, 0.20, 0.14, 0.08, 0.03)
RISK_BASE = np.array([0.12, 0.30, 0.55, 0.75, 0.60])
FRAUD_BASE = np.array([0.05, 0.08, 0.10, 0.20, 0.75])
LOANS_PER_CLIENT = np.array([1.3, 1.0, 0.6, 0.2, 0.0])  # extra loans, Poisson mean

PRODUCTS = ("installment", "cash", "bnpl", "bnpl_split", "payday")
# bnpl_split is the generator's kind for BNPL with an explicit semi-monthly schedule; the files
# call it bnpl like the others.
PRODUCT_NAMES = {"bnpl_split": "bnpl"}
PRODUCT_WEIGHTS = (0.35, 0.12, 0.25, 0.13, 0.15)

OUTCOMES = ("no_answer", "busy", "wrong_number", "promise_to_pay", "refused", "callback", "paid", "dispute")
# outcome probabilities of a collection call, by client type
OUTCOME_P = np.array([
    [0.10, 0.02, 0.00, 0.55, 0.00, 0.05, 0.28, 0.00],
    [0.30, 0.05, 0.01, 0.40, 0.02, 0.12, 0.09, 0.01],
    [0.35, 0.10, 0.02, 0.25, 0.10, 0.15, 0.02, 0.01],
    [0.50, 0.10, 0.10, 0.05, 0.18, 0.04, 0.00, 0.03],
    [0.45, 0.10, 0.20, 0.00, 0.15, 0.00, 0.00, 0.10],
])

# Servicing events (contract v3; the module docstring says why these rates)
LATE_FEE_PRODUCTS = (0, 1, 4)  # installment, cash, payday (PRODUCTS); BNPL charges no late fee
LATE_FEE_GRACE_DAYS = 15
LATE_FEE_PERCENT = 5
LATE_FEE_MIN_CENTS, LATE_FEE_MAX_CENTS = 1_500, 25_000
LATE_FEES_PER_LOAN = 4
NON_ACCRUAL_DAYS = 90
PENALTY_REVERSED_SHARE = 0.03
PENALTY_WAIVED_SHARE = 0.20
INTEREST_WAIVED_SHARE = 0.15
SERVICE_FEE_SHARE = 0.02
SERVICE_FEE_CENTS = np.array([500, 1_000, 1_500, 2_500])
STATEMENT_DAYS = 10
RECOVERY_SHARE = np.array([0.50, 0.50, 0.45, 0.35, 0.05])  # of written-off loans, by client type (TYPES)
RECOVERED_PART = (0.10, 0.50)
RECOVERY_PAYMENTS_P = (0.4, 0.3, 0.2, 0.1)  # 1, 2, 3 or 4 payments
RESTRUCTURE_PRODUCTS = (0, 1)  # installment, cash (PRODUCTS)
RESTRUCTURE_LATE_DAYS = 7
RESTRUCTURE_SHARE = np.array([0.0, 0.25, 0.50, 0.20, 0.0])  # of the loans that qualify, by client type
RESTRUCTURE_EXTRA_MONTHS = (3, 6)
REDEFAULT_SHARE = np.array([0.0, 0.15, 0.40, 0.80, 1.0])  # of restructured loans, by client type

EPOCH = dt.date(1970, 1, 1)


@dataclass
class Portfolio:
    """What was generated, as columns (numpy) ready to be written."""

    tables: dict[str, pa.Table]
    start: dt.date
    end: dt.date


def _days(d: dt.date) -> int:
    return (d - EPOCH).days


def add_months_days(day: np.ndarray, months: np.ndarray) -> np.ndarray:
    """Epoch days plus k months, the day of month clamped to the month's end (METRICS §1)."""
    d = day.astype("datetime64[D]")
    month = d.astype("datetime64[M]")
    dom = (d - month).astype(np.int64)  # 0-based day of month
    target = month + months.astype(np.int64)
    last = ((target + 1).astype("datetime64[D]") - target.astype("datetime64[D]")).astype(np.int64)
    return (target.astype("datetime64[D]") + np.minimum(dom, last - 1)).astype(np.int64)


def round_half_up_div(num: np.ndarray, den: np.ndarray | int) -> np.ndarray:
    """Round half-up of num / den for non-negative integers (exact)."""
    return (2 * num + den) // (2 * den)


def schedule_cents(amount_cents, rate_e8, n, repayment_bullet):
    """Instalments per METRICS §1 in integer cents, for generated (not explicit) schedules.

    Returns (loan_index, k, principal_cents, interest_cents), ordered by loan then k.
    """
    amount_cents = amount_cents.astype(np.int64)
    rate_e8 = rate_e8.astype(np.int64)
    n = n.astype(np.int64)
    out_loan, out_k, out_p, out_i = [], [], [], []

    bullet = repayment_bullet
    idx = np.flatnonzero(bullet)
    out_loan.append(idx)
    out_k.append(np.ones(len(idx), dtype=np.int64))
    out_p.append(amount_cents[idx])
    out_i.append(round_half_up_div(amount_cents[idx] * rate_e8[idx] * n[idx], 1_200_000_000))

    free = ~bullet & (rate_e8 == 0)
    idx = np.flatnonzero(free)
    reps = n[idx]
    loan = np.repeat(idx, reps)
    k = _within_group_index(reps) + 1
    base = round_half_up_div(amount_cents[loan], n[loan])
    principal = np.where(k < n[loan], base, amount_cents[loan] - (n[loan] - 1) * base)
    out_loan.append(loan)
    out_k.append(k)
    out_p.append(principal)
    out_i.append(np.zeros(len(loan), dtype=np.int64))

    paying = ~bullet & (rate_e8 > 0)
    idx = np.flatnonzero(paying)
    if len(idx):
        r = rate_e8[idx] / 1_200_000_000.0
        nn = n[idx]
        a = amount_cents[idx] / 100.0
        # A = round(amount r / (1 - (1 + r)^-n), 2), half-up like the engine's round of a double
        payment_cents = np.floor(a * r / (1 - (1 + r) ** (-nn.astype(float))) * 100 + 0.5).astype(np.int64)
        balance = amount_cents[idx].copy()
        for step in range(1, int(nn.max()) + 1):  # loop over instalment positions, not rows
            live = nn >= step
            interest = round_half_up_div(balance[live] * rate_e8[idx][live], 1_200_000_000)
            principal = np.where(nn[live] > step, payment_cents[live] - interest, balance[live])
            out_loan.append(idx[live])
            out_k.append(np.full(live.sum(), step, dtype=np.int64))
            out_p.append(principal)
            out_i.append(interest)
            balance[live] = balance[live] - principal

    loan = np.concatenate(out_loan)
    k = np.concatenate(out_k)
    order = np.lexsort((k, loan))
    return loan[order], k[order], np.concatenate(out_p)[order], np.concatenate(out_i)[order]


def _within_group_index(counts: np.ndarray) -> np.ndarray:
    """0, 1, …, c-1 for each count c, concatenated."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return np.arange(total, dtype=np.int64) - starts


def _name_pools(seed: int, size: int = 150) -> dict[str, dict[str, list[str]]]:
    from faker import Faker

    pools = {}
    for i, loc in enumerate(LOCALES):
        f = Faker(loc)
        f.seed_instance(seed * 7 + i)
        pools[loc] = {
            "first_m": [f.first_name_male() for _ in range(size)],
            "first_f": [f.first_name_female() for _ in range(size)],
            "last": [f.last_name() for _ in range(size * 2)],
            "city": [f.city() for _ in range(60)],
        }
        if loc == "ru_RU":
            # Russian surnames agree with gender: draw female surnames from the female pool.
            pools[loc]["last_f"] = [f.last_name_female() for _ in range(size * 2)]
            pools[loc]["last"] = [f.last_name_male() for _ in range(size * 2)]
    f = Faker("es_MX")
    f.seed_instance(seed + 99)
    pools["merchants"] = {"name": [f.company() for _ in range(400)]}
    return pools


def holdout_clients(n: int) -> np.ndarray:
    """Which of the clients 0..n-1 are in the contact hold-out group of the default configuration
    ([notify] holdout_share and holdout_salt), so that the generated calls spare them as loanwatch
    would: the draw of reports/rules.py holdout_sql over the ids the files give them, in one
    statement. The generator writes files before any warehouse exists, so it draws for itself."""
    import duckdb

    from loanwatch.reports.rules import holdout_params, holdout_sql

    con = duckdb.connect()
    try:
        client_id = "'C' || lpad(CAST(i AS VARCHAR), 7, '0')"
        held = con.execute(
            f"SELECT {holdout_sql(client_id)} FROM range($n) t(i) ORDER BY i",
            {**holdout_params(), "n": n}).fetchnumpy()
    finally:
        con.close()
    return next(iter(held.values())).astype(bool)


def generate(n_clients: int, seed: int = 42, start: dt.date | None = None, end: dt.date | None = None) -> Portfolio:
    end = end or dt.date.today()
    start = start or dt.date(end.year - 2, end.month, 1)
    if start >= end:
        raise ValueError("--start must be before --end")
    rng = np.random.default_rng(seed)
    pools = _name_pools(seed)
    d0, d1 = _days(start), _days(end)
    N = int(n_clients)

    # --- clients ------------------------------------------------------------------------
    locale = rng.choice(len(LOCALES), N, p=LOCALE_WEIGHTS)
    ctype = rng.choice(len(TYPES), N, p=TYPE_WEIGHTS)
    female = rng.random(N) < 0.5
    region_idx = np.zeros(N, dtype=np.int64)
    region_name = np.empty(N, dtype=object)
    tz = np.empty(N, dtype=object)
    first = np.empty(N, dtype=object)
    last = np.empty(N, dtype=object)
    city = np.empty(N, dtype=object)
    for li, loc in enumerate(LOCALES):  # loop over three locales
        m = locale == li
        cnt = int(m.sum())
        regs = REGIONS[loc]
        w = np.array([r[4] for r in regs], dtype=float)
        ri = rng.choice(len(regs), cnt, p=w / w.sum())
        region_idx[m] = ri
        region_name[m] = np.array([r[0] for r in regs], dtype=object)[ri]
        tz[m] = np.array([r[3] for r in regs], dtype=object)[ri]
        pf = np.array(pools[loc]["first_f"], dtype=object)
        pm = np.array(pools[loc]["first_m"], dtype=object)
        fem = female[m]
        first[m] = np.where(fem, pf[rng.integers(0, len(pf), cnt)], pm[rng.integers(0, len(pm), cnt)])
        lm = np.array(pools[loc]["last"], dtype=object)
        lf = np.array(pools[loc].get("last_f", pools[loc]["last"]), dtype=object)
        last[m] = np.where(fem, lf[rng.integers(0, len(lf), cnt)], lm[rng.integers(0, len(lm), cnt)])
        pc = np.array(pools[loc]["city"], dtype=object)
        city[m] = pc[rng.integers(0, len(pc), cnt)]
    risk = np.clip(RISK_BASE[ctype] + rng.normal(0, 0.12, N), 0.01, 0.99)
    fraud = np.clip(FRAUD_BASE[ctype] + rng.normal(0, 0.08, N), 0.0, 1.0)
    income = np.round(np.exp(rng.normal(9.6, 0.5, N)) * np.array([1.0, 4.5, 0.25])[locale], -1)
    age_days = rng.integers(20 * 365, 70 * 365, N)

    # --- loans --------------------------------------------------------------------------
    n_loans = 1 + rng.poisson(LOANS_PER_CLIENT[ctype])
    client_of = np.repeat(np.arange(N), n_loans)
    seq = _within_group_index(n_loans)
    first_issue = rng.integers(d0, max(d0 + 1, d1 - 10), N)
    gaps = np.where(seq > 0, 20 + rng.exponential(110, len(client_of)).astype(np.int64), 0)
    issue_day = first_issue[client_of] + _group_cumsum(gaps, n_loans)
    keep = issue_day <= d1 - 1
    client_of, seq, issue_day = client_of[keep], seq[keep], issue_day[keep]
    L = len(client_of)
    product = rng.choice(len(PRODUCTS), L, p=PRODUCT_WEIGHTS)
    ltype = ctype[client_of]
    inc = income[client_of] / np.array([1.0, 4.5, 0.25])[locale[client_of]]
    amount = np.select(
        [product == 0, product == 1, product >= 2],
        [
            np.clip(np.round(inc * rng.uniform(0.8, 3.0, L), -2), 3000, 120000),
            np.clip(np.round(inc * rng.uniform(0.3, 1.0, L), -2), 1000, 40000),
            np.clip(np.round(np.exp(rng.normal(7.8, 0.7, L)), 2), 300, 30000),
        ],
    )
    amount = np.where(product == 4, np.clip(np.round(inc * rng.uniform(0.2, 0.6, L), -2), 500, 15000), amount)
    amount_cents = np.rint(amount * 100).astype(np.int64)
    term = np.select(
        [product == 0, product == 1, product == 2, product == 3, product == 4],
        [rng.choice([6, 12, 18, 24, 36], L), rng.choice([3, 4, 6], L), rng.choice([3, 4, 6], L),
         rng.choice([4, 6, 8], L), np.ones(L, dtype=np.int64)],
    ).astype(np.int64)
    lrisk = np.clip(risk[client_of] + rng.normal(0, 0.05, L), 0, 1)
    lfraud = np.clip(fraud[client_of] + rng.normal(0, 0.05, L), 0, 1)
    rate = np.select(
        [product == 0, product == 1, product == 4],
        [0.12 + 0.45 * lrisk, 0.25 + 0.6 * lrisk, 1.0 + 2.0 * lrisk],
        default=0.0,
    )
    rate = np.round(rate, 4)
    rate_e8 = np.rint(rate * 1e8).astype(np.int64)
    bullet = product == 4
    explicit = product == 3
    n_merchants = max(10, N // 150)
    zipf = 1.0 / np.arange(1, n_merchants + 1) ** 0.9
    merchant = np.where(product >= 2, rng.choice(n_merchants, L, p=zipf / zipf.sum()), -1)
    merchant = np.where(product == 4, -1, merchant)
    cancelled = rng.random(L) < 0.015
    issue_sec = issue_day * 86400 + rng.integers(9 * 3600, 20 * 3600, L)

    # --- instalments ----------------------------------------------------------------------
    gen = ~explicit
    g_loan, g_k, g_p, g_i = schedule_cents(amount_cents[gen], rate_e8[gen], term[gen], bullet[gen])
    g_loan = np.flatnonzero(gen)[g_loan]
    g_due = add_months_days(issue_day[g_loan], np.where(bullet[g_loan], term[g_loan], g_k))
    e_idx = np.flatnonzero(explicit)
    e_loan = np.repeat(e_idx, term[e_idx])
    e_k = _within_group_index(term[e_idx]) + 1
    base = round_half_up_div(amount_cents[e_loan], term[e_loan])
    e_p = np.where(e_k < term[e_loan], base, amount_cents[e_loan] - (term[e_loan] - 1) * base)
    e_i = np.zeros(len(e_loan), dtype=np.int64)
    e_due = issue_day[e_loan] + 15 * e_k  # semi-monthly
    i_loan = np.concatenate([g_loan, e_loan])
    i_k = np.concatenate([g_k, e_k])
    i_p = np.concatenate([g_p, e_p])
    i_i = np.concatenate([g_i, e_i])
    i_due = np.concatenate([g_due, e_due])
    order = np.lexsort((i_k, i_loan))
    i_loan, i_k, i_p, i_i, i_due = i_loan[order], i_k[order], i_p[order], i_i[order], i_due[order]
    i_amt = i_p + i_i
    n_inst = np.bincount(i_loan, minlength=L)

    # --- behaviour: when and how much each instalment is paid ---------------------------------
    it = ltype[i_loan]
    stop_at = np.select(
        [ltype == 3, ltype == 4, ltype == 2],
        [rng.integers(0, np.maximum(1, n_inst // 2 + 1)), np.zeros(L, dtype=np.int64),
         np.where(rng.random(L) < 0.3, rng.integers(1, n_inst + 1), n_inst + 1)],
        default=n_inst + 1,
    )
    paid = (i_k <= stop_at[i_loan]) & ~cancelled[i_loan]
    inst_count = len(i_loan)
    delay = np.select(
        [it == 0, it == 1, it == 2, it == 3],
        [np.where(rng.random(inst_count) < 0.9, -rng.integers(0, 6, inst_count), rng.integers(1, 4, inst_count)),
         np.where(rng.random(inst_count) < 0.5, -rng.integers(0, 3, inst_count), 1 + rng.geometric(0.22, inst_count)),
         3 + rng.exponential(18, inst_count).astype(np.int64),
         np.where(rng.random(inst_count) < 0.5, rng.integers(0, 3, inst_count), 1 + rng.geometric(0.15, inst_count))],
        default=0,
    )
    pay_day = np.maximum(i_due + delay, issue_day[i_loan])
    partial = (it == 2) & (rng.random(inst_count) < 0.4) & paid
    first_part = np.where(partial, np.rint(i_amt * rng.uniform(0.5, 0.9, inst_count)).astype(np.int64), i_amt)
    second_part = i_amt - first_part
    second_day = pay_day + rng.integers(15, 46, inst_count)

    # prepayment: some reliable clients pay off the rest of the loan at one instalment
    prepay_at = np.where((ltype == 0) & (n_inst >= 3) & (rng.random(L) < 0.12),
                         rng.integers(1, np.maximum(2, n_inst), L), n_inst + 1)
    remaining = _reverse_group_cumsum(i_amt, n_inst)
    at_prepay = i_k == prepay_at[i_loan]
    after_prepay = i_k > prepay_at[i_loan]
    first_part = np.where(at_prepay & paid, remaining, first_part)
    second_part = np.where(at_prepay, 0, second_part)
    pay_day = np.where(at_prepay, i_due - rng.integers(3, 20, inst_count), pay_day)
    pay_day = np.maximum(pay_day, issue_day[i_loan])
    paid &= ~after_prepay

    p_loan = np.concatenate([i_loan[paid], i_loan[paid & (second_part > 0)]])
    p_day = np.concatenate([pay_day[paid], second_day[paid & (second_part > 0)]])
    p_amt = np.concatenate([first_part[paid], second_part[paid & (second_part > 0)]])
    # the instalment each payment is for, and whether it is the last part of it
    p_inst = np.concatenate([np.flatnonzero(paid), np.flatnonzero(paid & (second_part > 0))])
    p_last = np.concatenate([second_part[paid] == 0, np.ones(int((paid & (second_part > 0)).sum()), dtype=bool)])
    inwin = p_day <= d1
    p_loan, p_day, p_amt, p_inst, p_last = p_loan[inwin], p_day[inwin], p_amt[inwin], p_inst[inwin], p_last[inwin]
    p_sec = p_day * 86400 + rng.integers(7 * 3600, 22 * 3600, len(p_day))
    p_sec = np.minimum(p_sec, d1 * 86400 + 86399)
    # bounced payments: reversed a few days later, paid again a few days after that
    P = len(p_loan)
    bounced = (rng.random(P) < 0.015) & (p_day + 5 <= d1)
    rev_sec = p_sec[bounced] + rng.integers(2, 5, bounced.sum()) * 86400
    re_sec = rev_sec + rng.integers(1, 8, bounced.sum()) * 86400
    re_ok = re_sec <= d1 * 86400 + 86399

    # --- servicing events (contract v3): penalties, fees, waivers, reversed charges ------------------
    # From a generator of their own: every value drawn above is the same with or without them; only
    # the payments that pay a charge (or an instalment whose interest was waived) change amount.
    rng39 = np.random.default_rng([seed, 39])
    eff_loan = np.concatenate([p_loan[~bounced], p_loan[bounced][re_ok]])
    eff_sec = np.concatenate([p_sec[~bounced], re_sec[re_ok]])
    eff_inst = np.concatenate([p_inst[~bounced], p_inst[bounced][re_ok]])
    servicing = _servicing(
        rng39, d1, product, cancelled, issue_day, i_loan, i_k, i_due, i_amt, i_i, n_inst, paid, after_prepay,
        pay_day, second_day, second_part, p_inst, p_last, eff_loan, eff_sec, eff_inst)
    p_amt = p_amt + servicing.extra_cents

    # --- restructurings (contract v3), from a generator of their own ----------------------------------
    first_event = np.full(L, _NEVER, dtype=np.int64)
    for events in (servicing.charges, servicing.adjustments):
        np.minimum.at(first_event, events["loan"].to_numpy(), events["sec"].to_numpy())
    bounced_loans = np.zeros(L, dtype=bool)
    bounced_loans[p_loan[bounced]] = True
    restr = _restructurings(
        np.random.default_rng([seed, 40]), d1, product, ltype, cancelled, rate_e8, n_inst, prepay_at <= n_inst,
        i_loan, i_k, i_due, i_p, i_amt, paid, pay_day, second_part, second_day, bounced_loans, first_event)
    is_restr = restr.day >= 0
    n_payments_first = len(p_loan) + int(re_ok.sum())  # as many as there would be without restructurings
    # what the first schedule would have brought from the restructuring on is replaced (a restructured
    # loan has no bounced payment, charge or waiver before it: the bounced ones keep their order)
    keep = ~(is_restr[p_loan] & (p_sec >= restr.day[p_loan] * 86400))
    p_loan, p_sec, p_amt, bounced = (
        np.concatenate([a[keep], b]) for a, b in ((p_loan, restr.pay_loan), (p_sec, restr.pay_sec),
                                                  (p_amt, restr.pay_cents),
                                                  (bounced, np.zeros(len(restr.pay_loan), dtype=bool))))
    servicing.charges = servicing.charges.filter(~is_restr[servicing.charges["loan"].to_numpy()])
    servicing.adjustments = servicing.adjustments.filter(~is_restr[servicing.adjustments["loan"].to_numpy()])
    servicing.owed_extra_cents[is_restr] = 0

    pay_loan = np.concatenate([p_loan, p_loan[bounced][re_ok]])
    pay_sec = np.concatenate([p_sec, re_sec[re_ok]])
    pay_amt = np.concatenate([p_amt, p_amt[bounced][re_ok]])
    reversal_time = np.full(len(pay_loan), -1, dtype=np.int64)
    reversal_time[np.flatnonzero(bounced)] = rev_sec
    order = np.argsort(pay_sec, kind="stable")
    pay_loan, pay_sec, pay_amt, reversal_time = pay_loan[order], pay_sec[order], pay_amt[order], reversal_time[order]
    pay_id = np.arange(1, len(pay_loan) + 1)
    reversal_of = np.flatnonzero(reversal_time >= 0)
    r_loan = pay_loan[reversal_of]
    r_sec = reversal_time[reversal_of]
    r_amt = pay_amt[reversal_of]
    r_reverses = pay_id[reversal_of]
    r_id = len(pay_loan) + np.arange(1, len(r_loan) + 1)
    # drawn for as many payments as without restructurings, so that every later draw is the same
    channel = np.resize(rng.choice(4, n_payments_first, p=[0.45, 0.3, 0.15, 0.1]), len(pay_loan))

    # --- loan status versions -----------------------------------------------------------------
    effective = np.ones(len(pay_loan), dtype=bool)
    effective[reversal_of] = False
    paid_total = np.bincount(pay_loan[effective], weights=pay_amt[effective], minlength=L)
    due_total = np.bincount(i_loan, weights=i_amt, minlength=L)
    due_total[is_restr] = restr.due_cents
    last_pay = np.full(L, -1, dtype=np.int64)
    np.maximum.at(last_pay, pay_loan[effective], pay_sec[effective])
    # what is owed besides the schedule: the charges that stand, less what was waived
    owed_total = due_total + servicing.owed_extra_cents
    is_closed = (paid_total >= owed_total - 0.5) & ~cancelled & (last_pay > 0)
    # write-off: 180 days after the first instalment that was never paid
    unpaid_first = np.full(L, np.iinfo(np.int64).max)
    miss = ~paid & ~cancelled[i_loan] & ~after_prepay
    np.minimum.at(unpaid_first, i_loan[miss], i_due[miss])
    unpaid_first[is_restr] = restr.unpaid_first
    wo_day = unpaid_first + 180
    is_wo = (wo_day <= d1) & ~is_closed & ~cancelled
    is_default = (unpaid_first + 90 <= d1) & ~is_closed & ~cancelled
    # recoveries: payments on some written-off loans after their write-off (wo_day > 0: a loan with
    # no unpaid instalment has none, its unpaid_first + 180 wraps around)
    written_off = is_wo & (wo_day > 0)
    v_loan, v_sec, v_amt = _recoveries(rng39, d1, np.flatnonzero(written_off), ltype, wo_day, owed_total - paid_total)

    # --- calls --------------------------------------------------------------------------------
    # collection calls at DPD 3, 7, 14, 30 and 60 while an instalment is late, until it is paid
    late_days = np.where(paid, np.maximum(pay_day - i_due, 0), 10_000)
    call_offsets = np.array([3, 7, 14, 30, 60])
    c_inst = np.repeat(np.arange(inst_count), len(call_offsets))
    c_off = np.tile(call_offsets, inst_count)
    want = (late_days[c_inst] > c_off) & (i_due[c_inst] + c_off <= d1) & ~cancelled[i_loan[c_inst]]
    want &= rng.random(len(c_inst)) < 0.55
    c_inst, c_off = c_inst[want], c_off[want]
    c_loan = i_loan[c_inst]
    c_client = client_of[c_loan]
    c_day = i_due[c_inst] + c_off
    c_sec = c_day * 86400 + rng.integers(9 * 3600, 20 * 3600, len(c_day))
    cp = OUTCOME_P[ctype[c_client]]
    u = rng.random(len(c_day))[:, None]
    c_outcome = (u > np.cumsum(cp, axis=1)).sum(axis=1)
    c_outcome = np.minimum(c_outcome, len(OUTCOMES) - 1)
    talk = np.where(np.isin(c_outcome, [0, 1]), 0, rng.integers(30, 600, len(c_day)))
    total = talk + rng.integers(10, 45, len(c_day))
    c_promised = np.where(c_outcome == 3, i_amt[c_inst], -1)
    c_promised_day = np.where(c_outcome == 3, c_day + rng.integers(2, 8, len(c_day)), -1)
    c_agent = rng.integers(1, 21, len(c_day))
    c_campaign = np.where(c_off < 30, 0, 1)
    # the call centre follows loanwatch's default hold-out: its clients are never called
    # and a restructured loan's calls about its first schedule stop at the restructuring
    dropped = holdout_clients(N)[c_client] | (is_restr[c_loan] & (c_day >= restr.day[c_loan]))
    c_inst, c_off, c_loan, c_client, c_day, c_sec, c_outcome, talk, total, c_promised, c_promised_day, c_agent, \
        c_campaign = (a[~dropped] for a in (c_inst, c_off, c_loan, c_client, c_day, c_sec, c_outcome, talk, total,
                                         c_promised, c_promised_day, c_agent, c_campaign))

    # --- agents and logins (contract v2) -------------------------------------------------------
    # A generator of their own, so that adding them changed no other generated value.
    rng2 = np.random.default_rng([seed, 2])
    n_agents = 20
    a_level = rng2.integers(0, 3, n_agents)
    a_updated = rng2.random(n_agents) < 0.25  # promoted once, mid-period: a second version
    a_pool = np.array(pools["es_MX"]["first_f"] + pools["es_MX"]["first_m"], dtype=object)
    a_last = np.array(pools["es_MX"]["last"], dtype=object)
    a_name = (a_pool[rng2.integers(0, len(a_pool), n_agents)] + " " + a_last[rng2.integers(0, len(a_last), n_agents)])
    # a connected call (talk time) makes a login in the next 48 hours more likely
    connected = talk > 0
    after_call = rng2.random(len(c_day)) < np.where(connected, 0.45, 0.12)
    g_client = c_client[after_call]
    g_sec = c_sec[after_call] + rng2.integers(600, 48 * 3600, int(after_call.sum()))
    # and clients use the app on their own: about one session a client, any day of their life
    own = rng2.poisson(1.0, N)
    o_client = np.repeat(np.arange(N), own)
    first_day = np.full(N, d1, dtype=np.int64)
    np.minimum.at(first_day, client_of, issue_day)
    o_sec = (first_day[o_client] + (rng2.random(len(o_client)) * (d1 - first_day[o_client])).astype(np.int64)) * 86400 \
        + rng2.integers(7 * 3600, 23 * 3600, len(o_client))
    g_client, g_sec = np.concatenate([g_client, o_client]), np.concatenate([g_sec, o_sec])
    in_range = g_sec < (d1 + 1) * 86400
    g_client, g_sec = g_client[in_range], g_sec[in_range]
    order = np.argsort(g_sec, kind="stable")
    g_client, g_sec = g_client[order], g_sec[order]
    g_channel = rng2.choice(3, len(g_sec), p=[0.6, 0.25, 0.15])

    # --- client versions ------------------------------------------------------------------------
    client_first_loan = np.full(N, d1, dtype=np.int64)
    np.minimum.at(client_first_loan, client_of, issue_day)
    created_sec = (client_first_loan - rng.integers(0, 4, N)) * 86400 + rng.integers(8 * 3600, 20 * 3600, N)
    updated = (rng.random(N) < 0.12) & (created_sec // 86400 + 30 < d1)
    upd_sec = created_sec + rng.integers(30 * 86400, np.maximum(31 * 86400, (d1 * 86400 - created_sec)), N)
    upd_sec = np.minimum(upd_sec, d1 * 86400)

    # --- merchants and their ledger ----------------------------------------------------------------
    m_sizes = rng.choice(3, n_merchants, p=[0.6, 0.3, 0.1])
    m_cat = rng.choice(6, n_merchants)
    m_region = rng.integers(0, len(REGIONS["es_MX"]), n_merchants)
    m_created = (d0 - 60) * 86400 + rng.integers(0, 50 * 86400, n_merchants)
    m_updated = rng.random(n_merchants) < 0.1
    m_upd_sec = (d0 + (d1 - d0) // 2) * 86400 + rng.integers(0, 86400, n_merchants)
    orders = (merchant >= 0) & ~cancelled
    o_merchant = merchant[orders]
    o_sec = issue_sec[orders]
    o_amt = amount_cents[orders]
    fee_amt = round_half_up_div(o_amt * 3, 100)
    refund = rng.random(len(o_amt)) < 0.02
    ref_sec = o_sec[refund] + rng.integers(1, 20, refund.sum()) * 86400
    ref_ok = ref_sec <= d1 * 86400 + 86399
    # sales the merchants are paid for directly (card, cash on delivery), not financed by a loan:
    # about 1.5 for each financed order, around its time, from a generator of their own
    rng3 = np.random.default_rng([seed, 3])
    direct = rng3.poisson(1.5, len(o_amt))
    s_merchant = np.repeat(o_merchant, direct)
    s_sec = np.clip(np.repeat(o_sec, direct) + rng3.integers(-15 * 86400, 15 * 86400, int(direct.sum())),
                    d0 * 86400, d1 * 86400 + 86399)
    s_amt = np.maximum(100, (np.repeat(o_amt, direct) * rng3.lognormal(-1.0, 0.6, int(direct.sum()))).astype(np.int64))
    s_fee = round_half_up_div(s_amt * 3, 100)
    # weekly payouts of the net inflow of each merchant
    week = (o_sec // 86400 - d0) // 7
    n_weeks = int((d1 - d0) // 7) + 1
    key = o_merchant * n_weeks + week
    net = np.bincount(key, weights=o_amt - fee_amt, minlength=n_merchants * n_weeks)
    ref_key = o_merchant[refund][ref_ok] * n_weeks + (ref_sec[ref_ok] // 86400 - d0) // 7
    net -= np.bincount(ref_key, weights=o_amt[refund][ref_ok], minlength=n_merchants * n_weeks)
    net += np.bincount(s_merchant * n_weeks + (s_sec // 86400 - d0) // 7, weights=s_amt - s_fee,
                       minlength=n_merchants * n_weeks)
    po_keys = np.flatnonzero(net > 0)
    po_merchant = po_keys // n_weeks
    po_day = d0 + (po_keys % n_weeks) * 7 + 7
    po_ok = po_day <= d1
    po_merchant, po_day, po_amt = po_merchant[po_ok], po_day[po_ok], net[po_keys][po_ok].astype(np.int64)
    po_sec = po_day * 86400 + 10 * 3600
    por = (rng.random(len(po_amt)) < 0.02) & (po_day + 2 <= d1)

    ev_merchant = np.concatenate([o_merchant, o_merchant, o_merchant[refund][ref_ok], po_merchant, po_merchant[por],
                                  s_merchant, s_merchant])
    ev_type = np.concatenate([np.full(len(o_amt), 0), np.full(len(o_amt), 3), np.full(int(ref_ok.sum()), 2),
                              np.full(len(po_amt), 1), np.full(int(por.sum()), 4), np.full(len(s_amt), 0),
                              np.full(len(s_amt), 3)])
    ev_amt = np.concatenate([o_amt, fee_amt, o_amt[refund][ref_ok], po_amt, po_amt[por], s_amt, s_fee])
    ev_sec = np.concatenate([o_sec, o_sec + 60, ref_sec[ref_ok], po_sec, po_sec[por] + 2 * 86400, s_sec, s_sec + 60])
    # nothing after the last second of --end: a fee a minute after a sale clipped to that second
    # would make the data date tomorrow
    ev_sec = np.minimum(ev_sec, d1 * 86400 + 86399)
    keep_ev = ev_amt > 0
    ev_merchant, ev_type, ev_amt, ev_sec = ev_merchant[keep_ev], ev_type[keep_ev], ev_amt[keep_ev], ev_sec[keep_ev]
    order = np.argsort(ev_sec, kind="stable")
    ev_merchant, ev_type, ev_amt, ev_sec = ev_merchant[order], ev_type[order], ev_amt[order], ev_sec[order]

    tables = {
        "clients": pa.table({
            "idx": np.concatenate([np.arange(N), np.flatnonzero(updated)]),
            "version": np.concatenate([np.zeros(N, dtype=np.int64), np.ones(int(updated.sum()), dtype=np.int64)]),
            "locale": np.concatenate([locale, locale[updated]]),
            "first": pa.array(np.concatenate([first, first[updated]]).tolist(), pa.string()),
            "last": pa.array(np.concatenate([last, last[updated]]).tolist(), pa.string()),
            "region": pa.array(np.concatenate([region_name, region_name[updated]]).tolist(), pa.string()),
            "city": pa.array(np.concatenate([city, city[updated]]).tolist(), pa.string()),
            "tz": pa.array(np.concatenate([tz, tz[updated]]).tolist(), pa.string()),
            "female": np.concatenate([female, female[updated]]),
            "income": np.concatenate([income, income[updated] * 1.1]),
            "birth_day": np.concatenate([d1 - age_days, (d1 - age_days)[updated]]),
            "phone_seed": np.concatenate([rng.integers(10**9, 10**10 - 1, N), rng.integers(10**9, 10**10 - 1, int(updated.sum()))]),
            "channel": np.concatenate([ch := rng.choice(3, N, p=[0.4, 0.45, 0.15]), ch[updated]]),
            "dnc": np.concatenate([dnc := rng.random(N) < 0.03, dnc[updated]]),
            "updated_sec": np.concatenate([created_sec, upd_sec[updated]]),
            "ctype": np.concatenate([ctype, ctype[updated]]),
        }),
        "loans": pa.table({
            "idx": np.arange(L),
            "client": client_of,
            "merchant": merchant,
            "product": product,
            "amount_cents": amount_cents,
            "rate": rate,
            "issue_day": issue_day,
            "issue_sec": issue_sec,
            "term": term,
            "bullet": bullet,
            "explicit": explicit,
            "risk": np.round(lrisk, 3),
            "fraud": np.round(lfraud, 3),
            "cancelled": cancelled,
            "closed_sec": np.where(is_closed, last_pay + 3600, -1),
            "default_day": np.where(is_default, unpaid_first + 90, -1),
            "wo_day": np.where(is_wo, wo_day, -1),
            "restr_day": restr.day,
        }),
        # the new schedules of restructured loans (instalment records with effective_from)
        "restructured": restr.schedule,
        "schedule": pa.table({"loan": e_loan, "k": e_k, "due_day": e_due, "principal_cents": e_p, "interest_cents": e_i}),
        # every instalment of every loan (not written out): what `notify simulate` runs forward
        "instalments": pa.table({"loan": i_loan, "k": i_k, "due_day": i_due, "amount_cents": i_amt}),
        "payments": pa.table({
            # recoveries take the ids after the reversals': every other payment keeps its id
            "id": np.concatenate([pay_id, r_id, len(pay_id) + len(r_id) + np.arange(1, len(v_loan) + 1)]),
            "loan": np.concatenate([pay_loan, r_loan, v_loan]),
            "sec": np.concatenate([pay_sec, r_sec, v_sec]),
            "amount_cents": np.concatenate([pay_amt, r_amt, v_amt]),
            "reverses": np.concatenate([np.full(len(pay_id), -1), r_reverses, np.full(len(v_loan), -1)]),
            "channel": np.concatenate([channel, np.zeros(len(r_id), dtype=np.int64), np.ones(len(v_loan), dtype=np.int64)]),
        }),
        "charges": servicing.charges,
        "adjustments": servicing.adjustments,
        "calls": pa.table({
            "idx": np.arange(len(c_day)),
            "client": c_client,
            "loan": c_loan,
            "sec": c_sec,
            "outcome": c_outcome,
            "talk": talk,
            "total": total,
            "promised_cents": c_promised,
            "promised_day": c_promised_day,
            "agent": c_agent,
            "campaign": c_campaign,
        }),
        "agents": pa.table({
            "idx": np.concatenate([np.arange(n_agents), np.flatnonzero(a_updated)]) + 1,
            "name": pa.array(np.concatenate([a_name, a_name[a_updated]]).tolist(), pa.string()),
            "team": np.concatenate([np.arange(n_agents) % 2, (np.arange(n_agents) % 2)[a_updated]]),
            "level": np.concatenate([a_level, a_level[a_updated] + 1]),
            "sec": np.concatenate([np.full(n_agents, (d0 - 30) * 86400), np.full(int(a_updated.sum()), (d0 + (d1 - d0) // 2) * 86400)]),
        }),
        "logins": pa.table({
            "idx": np.arange(len(g_sec)),
            "client": g_client,
            "sec": g_sec,
            "channel": g_channel,
        }),
        "merchants": pa.table({
            "idx": np.concatenate([np.arange(n_merchants), np.flatnonzero(m_updated)]),
            "name": pa.array((np.array(pools["merchants"]["name"], dtype=object)[np.arange(n_merchants) % 400]).tolist()
                             + (np.array(pools["merchants"]["name"], dtype=object)[np.flatnonzero(m_updated) % 400]).tolist(), pa.string()),
            "size": np.concatenate([m_sizes, np.minimum(m_sizes[m_updated] + 1, 2)]),
            "category": np.concatenate([m_cat, m_cat[m_updated]]),
            "region": np.concatenate([m_region, m_region[m_updated]]),
            "sec": np.concatenate([m_created, m_upd_sec[m_updated]]),
        }),
        "merchant_events": pa.table({
            "idx": np.arange(len(ev_amt)),
            "merchant": ev_merchant,
            "type": ev_type,
            "amount_cents": ev_amt,
            "sec": ev_sec,
        }),
    }
    return Portfolio(tables, start, end)


@dataclass
class Servicing:
    """The servicing events of a portfolio and what they change in its payments."""

    charges: pa.Table
    adjustments: pa.Table
    extra_cents: np.ndarray  # per payment (in the window): the charges it pays, less interest waived
    owed_extra_cents: np.ndarray  # per loan: charges that stand, less waivers


_SECOND = 2 ** 33  # more than any epoch second the generator writes: (loan, second) as one integer
_NEVER = 2 ** 34


def _next_after(keys: np.ndarray, loan: np.ndarray, sec: np.ndarray) -> np.ndarray:
    """The second of the first of a loan's payments (keys: loan * _SECOND + second, sorted) after sec;
    _NEVER when there is none."""
    keys = np.append(keys, np.iinfo(np.int64).max)  # past every loan's payments: no loan's own
    found = keys[np.searchsorted(keys, loan * _SECOND + sec, side="right")]
    return np.where(found // _SECOND == loan, found % _SECOND, _NEVER)


def _later_min(values: np.ndarray, group: np.ndarray) -> np.ndarray:
    """For each element of groups laid out one after another, the least value of the elements after
    it in its group (_NEVER for the last): a running minimum from the end, kept within the group
    by an offset per group."""
    if not len(values):
        return values
    span = 2 * _NEVER
    shifted = np.minimum.accumulate((values + group * span)[::-1])[::-1] - group * span  # from here on
    later = np.append(shifted[1:], _NEVER)
    return np.where(np.append(group[1:] == group[:-1], False), later, _NEVER)


def _servicing(rng, d1, product, cancelled, issue_day, i_loan, i_k, i_due, i_amt, i_i, n_inst, paid, after_prepay,
               pay_day, second_day, second_part, p_inst, p_last, eff_loan, eff_sec, eff_inst) -> Servicing:
    """Late-payment penalties, service fees, waivers and reversed charges (the module docstring
    gives the rates), and the change they make to the payments that pay them.

    Money never runs ahead of what is owed (a charge is paid only by a payment after it, and a
    waiver forgives what no payment has reached yet), so no credit ever arises and a loan closes
    exactly when its payments cover its schedule, its standing charges less its waivers."""
    L, n_rows = len(product), len(i_loan)
    end_sec = d1 * 86400 + 86399
    starts = np.cumsum(n_inst) - n_inst
    # the payment (within the window) that pays the rest of each instalment
    carry = np.full(n_rows, -1, dtype=np.int64)
    last_rows = np.flatnonzero(p_last)
    carry[p_inst[last_rows]] = last_rows
    keys = np.sort(eff_loan * _SECOND + eff_sec)
    # the first payment for any later instalment of the same loan
    first_for = np.full(n_rows, _NEVER, dtype=np.int64)
    np.minimum.at(first_for, eff_inst, eff_sec)
    later_paid = _later_min(first_for, i_loan)

    # penalties: instalments still unpaid LATE_FEE_GRACE_DAYS after their due date
    charge_day = i_due + LATE_FEE_GRACE_DAYS
    last_day = np.where(second_part > 0, second_day, pay_day)
    miss = ~paid & ~cancelled[i_loan] & ~after_prepay
    unpaid_first = np.full(L, d1 + 10 ** 6, dtype=np.int64)
    np.minimum.at(unpaid_first, i_loan[miss], i_due[miss])
    pen = (~paid | (last_day >= charge_day)) & ~after_prepay & ~cancelled[i_loan] \
        & np.isin(product[i_loan], LATE_FEE_PRODUCTS) & (charge_day <= d1) \
        & (charge_day <= unpaid_first[i_loan] + NON_ACCRUAL_DAYS)
    pen &= _group_cumsum(pen.astype(np.int64), n_inst) <= LATE_FEES_PER_LOAN
    pj = np.flatnonzero(pen)
    n_pen = len(pj)
    pen_amt = np.clip(round_half_up_div(i_amt[pj] * LATE_FEE_PERCENT, 100), LATE_FEE_MIN_CENTS, LATE_FEE_MAX_CENTS)
    pen_sec = charge_day[pj] * 86400 + 2 * 3600 + rng.integers(0, 3600, n_pen)  # the nightly run
    draw = rng.random(n_pen)
    rev_sec = pen_sec + rng.integers(1, 6, n_pen) * 86400 + rng.integers(3600, 8 * 3600, n_pen)
    reversed_ = (draw < PENALTY_REVERSED_SHARE) & (rev_sec <= end_sec)
    # a waiver comes before the loan's next payment (so the penalty is still open), within 20 days
    latest = np.minimum(np.minimum(_next_after(keys, i_loan[pj], pen_sec) - 60, pen_sec + 20 * 86400), end_sec)
    waived = (draw >= PENALTY_REVERSED_SHARE) & (draw < PENALTY_REVERSED_SHARE + PENALTY_WAIVED_SHARE) \
        & (latest - pen_sec >= 3600)
    w_sec = pen_sec + 60 + (rng.random(n_pen) * np.maximum(latest - pen_sec - 60, 0)).astype(np.int64)
    # sometimes the instalment's interest too, when nothing has been paid towards it yet
    w_interest = waived & (i_i[pj] > 0) & (second_part[pj] == 0) & (later_paid[pj] > pen_sec) \
        & (rng.random(n_pen) < INTEREST_WAIVED_SHARE)

    # service fees: on one instalment of some loans, on its statement day, before it is paid
    has_fee = rng.random(L) < SERVICE_FEE_SHARE
    fj = starts + (rng.random(L) * n_inst).astype(np.int64)
    fee_amt = rng.choice(SERVICE_FEE_CENTS, L)
    fee_day = np.maximum(i_due[fj] - STATEMENT_DAYS, issue_day + 1)
    fee_sec = fee_day * 86400 + 2 * 3600 + rng.integers(0, 3600, L)
    has_fee &= ~cancelled & (fee_day <= d1) & ~after_prepay[fj] & (~paid[fj] | (pay_day[fj] >= fee_day))
    fl = np.flatnonzero(has_fee)

    # what the payments pay besides the schedule
    extra = np.zeros(len(p_inst), dtype=np.int64)
    stands = ~reversed_ & ~waived
    for inst, cents in ((pj[stands], pen_amt[stands]), (fj[fl], fee_amt[fl]), (pj[w_interest], -i_i[pj[w_interest]])):
        row = carry[inst]
        np.add.at(extra, row[row >= 0], cents[row >= 0])
    owed_extra = (np.bincount(i_loan[pj[stands]], weights=pen_amt[stands], minlength=L)
                  + np.bincount(fl, weights=fee_amt[fl], minlength=L)
                  - np.bincount(i_loan[pj[w_interest]], weights=i_i[pj[w_interest]], minlength=L))

    # charges: the penalties and fees (ids in time order), then the reversals
    c_loan = np.concatenate([i_loan[pj], fl])
    c_type = np.concatenate([np.ones(n_pen, dtype=np.int64), np.zeros(len(fl), dtype=np.int64)])
    c_amt = np.concatenate([pen_amt, fee_amt[fl]])
    c_sec = np.concatenate([pen_sec, fee_sec[fl]])
    c_inst = np.concatenate([i_k[pj], i_k[fj[fl]]])
    c_rev = np.concatenate([np.where(reversed_, rev_sec, -1), np.full(len(fl), -1)])
    order = np.lexsort((c_loan, c_sec))
    c_loan, c_type, c_amt, c_sec, c_inst, c_rev = (a[order] for a in (c_loan, c_type, c_amt, c_sec, c_inst, c_rev))
    c_id = np.arange(1, len(c_loan) + 1)
    undo = np.flatnonzero(c_rev >= 0)
    charges = pa.table({
        "id": np.concatenate([c_id, len(c_id) + np.arange(1, len(undo) + 1)]),
        "loan": np.concatenate([c_loan, c_loan[undo]]),
        "type": np.concatenate([c_type, np.full(len(undo), 2)]),
        "amount_cents": np.concatenate([c_amt, c_amt[undo]]),
        "sec": np.concatenate([c_sec, c_rev[undo]]),
        "instalment": np.concatenate([c_inst, np.full(len(undo), -1)]),
        "reverses": np.concatenate([np.full(len(c_id), -1), c_id[undo]]),
    })

    # adjustments: the penalty waivers and, at the same time, the interest waivers
    wp, wi = np.flatnonzero(waived), np.flatnonzero(w_interest)
    a_loan = np.concatenate([i_loan[pj[wp]], i_loan[pj[wi]]])
    a_type = np.concatenate([np.full(len(wp), 2), np.zeros(len(wi), dtype=np.int64)])  # ADJUSTMENT_TYPES
    a_amt = np.concatenate([pen_amt[wp], i_i[pj[wi]]])
    a_sec = np.concatenate([w_sec[wp], w_sec[wi]])
    a_inst = np.concatenate([i_k[pj[wp]], i_k[pj[wi]]])
    order = np.lexsort((a_type, a_loan, a_sec))
    adjustments = pa.table({
        "id": np.arange(1, len(a_loan) + 1),
        "loan": a_loan[order],
        "type": a_type[order],
        "amount_cents": a_amt[order],
        "sec": a_sec[order],
        "instalment": a_inst[order],
    })
    return Servicing(charges, adjustments, extra, np.rint(owed_extra).astype(np.int64))


def _recoveries(rng, d1, loans, ltype, wo_day, owed_cents):
    """Payments on some written-off loans after their write-off: (loan, second, cents)."""
    W = len(loans)
    recovers = rng.random(W) < RECOVERY_SHARE[ltype[loans]]
    share = rng.uniform(*RECOVERED_PART, W)
    count = rng.choice(len(RECOVERY_PAYMENTS_P), W, p=RECOVERY_PAYMENTS_P) + 1
    first_day = wo_day[loans] + rng.integers(15, 121, W)
    each = np.maximum(100, np.rint(np.maximum(owed_cents[loans], 0) * share / count / 100) * 100).astype(np.int64)
    of = np.repeat(np.arange(W), count)
    gaps = np.where(_within_group_index(count) > 0, rng.integers(20, 61, len(of)), 0)
    day = first_day[of] + _group_cumsum(gaps, count)
    sec = day * 86400 + rng.integers(9 * 3600, 18 * 3600, len(of))
    keep = recovers[of] & (day <= d1)
    return loans[of][keep], sec[keep], each[of][keep]


@dataclass
class Restructurings:
    """The restructured loans of a portfolio: their dates, new schedules and new payments."""

    day: np.ndarray  # per loan: the epoch day of its restructuring, -1 for none
    schedule: pa.Table  # loan, k, due_day, principal_cents, interest_cents, from_day
    pay_loan: np.ndarray  # the payments of the new schedules (in the window)
    pay_sec: np.ndarray
    pay_cents: np.ndarray
    unpaid_first: np.ndarray  # per restructured loan (as day): the first new instalment never paid
    due_cents: np.ndarray  # per restructured loan: what it owes in all (paid before + new schedule)


def _restructurings(rng, d1, product, ltype, cancelled, rate_e8, n_inst, prepaid, i_loan, i_k, i_due, i_p, i_amt,
                    paid, pay_day, second_part, second_day, bounced_loans, charged_sec) -> Restructurings:
    """Restructurings of loans that fall behind (the module docstring gives the rates)."""
    L, end_sec = len(product), d1 * 86400 + 86399
    done_day = np.where(paid, np.where(second_part > 0, second_day, pay_day), np.iinfo(np.int64).max // 2)
    late_rows = np.flatnonzero(done_day - i_due > RESTRUCTURE_LATE_DAYS)
    first_late = np.full(L, len(i_loan), dtype=np.int64)
    np.minimum.at(first_late, i_loan[late_rows], late_rows)
    has_late = first_late < len(i_loan)
    row = np.where(has_late, first_late, 0)
    day = i_due[row] + rng.integers(RESTRUCTURE_LATE_DAYS + 1, 15, L)
    take = rng.random(L) < RESTRUCTURE_SHARE[ltype]
    extra = rng.choice(RESTRUCTURE_EXTRA_MONTHS, L)
    # instalments before the late one were all settled before the restructuring (none was more than
    # 7 days late); nothing of the late one was paid before it, so what is outstanding is the
    # principal of the late instalment and the ones after it
    restructured = take & has_late & (i_k[row] >= 2) & np.isin(product, RESTRUCTURE_PRODUCTS) & ~cancelled \
        & ~prepaid & (day <= d1) & (~paid[row] | (pay_day[row] >= day)) & ~bounced_loans \
        & (charged_sec >= day * 86400)
    loans = np.flatnonzero(restructured)
    outstanding = _reverse_group_cumsum(i_p, n_inst)[row[loans]]
    months = n_inst[loans] - i_k[row[loans]] + 1 + extra[loans]
    s_of, s_k, s_p, s_i = schedule_cents(outstanding, rate_e8[loans], months, np.zeros(len(loans), dtype=bool))
    s_loan = loans[s_of]
    s_due = add_months_days(day[s_loan], s_k)
    # afterwards: some stop paying again after a number of new instalments, the others pay them all
    stops = rng.random(len(loans)) < REDEFAULT_SHARE[ltype[loans]]
    pays_until = np.where(stops, (rng.random(len(loans)) * months).astype(np.int64), months)
    s_paid = s_k <= pays_until[s_of]
    s_day = np.maximum(s_due + rng.integers(-3, 6, len(s_k)), day[s_loan])
    s_sec = s_day * 86400 + rng.integers(8 * 3600, 21 * 3600, len(s_k))
    in_window = s_paid & (s_sec <= end_sec)
    unpaid = np.full(len(loans), np.iinfo(np.int64).max // 2)
    np.minimum.at(unpaid, s_of[~s_paid], s_due[~s_paid])
    earlier = i_k < i_k[row][i_loan]  # the instalments before the late one: paid in full
    before = np.bincount(i_loan[earlier], weights=i_amt[earlier], minlength=L)[loans]
    due = before + np.bincount(s_of, weights=s_p + s_i, minlength=len(loans))
    return Restructurings(
        day=np.where(restructured, day, -1),
        schedule=pa.table({"loan": s_loan, "k": s_k, "due_day": s_due, "principal_cents": s_p,
                           "interest_cents": s_i, "from_day": day[s_loan]}),
        pay_loan=s_loan[in_window], pay_sec=s_sec[in_window], pay_cents=(s_p + s_i)[in_window],
        unpaid_first=unpaid, due_cents=np.rint(due).astype(np.int64),
    )


def _group_cumsum(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    total = np.cumsum(values)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    before = np.concatenate([[0], total])[starts]
    return total - before


def _reverse_group_cumsum(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """For each element, the sum of it and the following elements of its group."""
    totals = np.repeat(np.add.reduceat(values, np.cumsum(counts) - counts) if len(values) else values, counts)
    return totals - _group_cumsum(values, counts) + values

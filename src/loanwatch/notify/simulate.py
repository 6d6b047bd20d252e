"""`loanwatch notify simulate`: two contact policies run forward on the generator's behaviour model.

The portfolio and each client's behaviour type come from `generate`. Over the horizon, every
instalment due in it is paid, day by day, with a probability that depends on the client's type,
on whether it is due or late, and on the contacts of that day. The response model (the numbers in
RESPONSE and REACH below) is an assumption, written down here and in docs/notify.md:

- reliable clients pay on the due day whatever happens; forgetful ones often forget, and a
  reminder within 3 days of the due date or a first notice once late makes them pay; strugglers
  respond a little; defaulters hardly; fraud never;
- a message has an effect only if the client got none in the previous 3 days (a second one the
  same week adds nothing), and more than 3 messages in 7 days annoy: the client's chance to pay
  drops by 30 % while that lasts;
- a call reaches the right party with a probability by type, and a reached client is much more
  likely to pay that day; the call centre has a fixed capacity per day.

Policies. baseline: every client with a late instalment gets a message every day; calls go to
clients 15+ days late in random order. loanwatch: the contact plan's rules (pre-due, due day,
overdue at 1/7/30 days, final notice at 85), at most 3 messages a client a week, calls to clients
15+ days late ranked by expected recovery = P(cure after a call, learnt per DPD bucket from the
simulated history, as the plan learns it from the warehouse) x past-due amount, no call within 7
days after a conversation, a 5 % hold-out never contacted. Days loop; everything within a day is
vectorised over instalments and clients.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from loanwatch.generate.portfolio import TYPES, generate

# P(pay today) by type: on the due day, on the due day after a reminder, per day once late
ON_DUE = np.array([0.97, 0.35, 0.15, 0.05, 0.0])
ON_DUE_REMINDED = np.array([0.97, 0.85, 0.30, 0.07, 0.0])
LATE = np.array([0.50, 0.06, 0.02, 0.003, 0.0])
# added to today's chance by a message (first in 3 days) and by a call that reaches the client
MESSAGE_LIFT = np.array([0.0, 0.35, 0.05, 0.01, 0.0])
CALL_LIFT = np.array([0.3, 0.55, 0.30, 0.05, 0.0])
REACH = np.array([0.8, 0.6, 0.5, 0.25, 0.15])
ANNOYED = 0.7  # factor on the chance to pay after more than 3 messages in 7 days
BUCKETS = np.array([0, 30, 60, 90, 180, 10**9])


@dataclass
class PolicyResult:
    policy: str
    messages: int
    calls: int
    amount_recovered: float   # paid, within the horizon, of what fell due in it
    paid_after_due: float     # the part of it paid late
    past_due_at_end: float
    loans_late: int           # loans that were late at some point
    loans_cured: int          # of those, loans with nothing late at the end
    cure_rate: float
    cap_breaches: int


def simulate(clients: int = 5000, seed: int = 7, horizon: int = 120, call_capacity: int = 40,
             end: dt.date = dt.date(2025, 12, 31)) -> list[PolicyResult]:
    p = generate(clients, seed=seed, start=end - dt.timedelta(days=540), end=end)
    loans = p.tables["loans"]
    inst = p.tables["instalments"]
    ctype = p.tables["clients"].column("ctype").to_numpy()[: clients]  # first versions come first
    loan_client = loans.column("client").to_numpy()
    cancelled = loans.column("cancelled").to_numpy()
    d0 = (end - dt.date(1970, 1, 1)).days - horizon
    due = inst.column("due_day").to_numpy()
    keep = (due >= d0 + 3) & (due < d0 + horizon) & ~cancelled[inst.column("loan").to_numpy()]
    loan = inst.column("loan").to_numpy()[keep]
    due = due[keep] - d0  # day index within the horizon
    amount = inst.column("amount_cents").to_numpy()[keep] / 100.0
    client = loan_client[loan]
    kind = ctype[client]
    return [run_policy(name, loan, client, kind, due, amount, horizon, call_capacity, clients, seed)
            for name in ("baseline", "loanwatch")]


def run_policy(policy: str, loan, client, kind, due, amount, horizon: int, capacity: int, n_clients: int,
               seed: int) -> PolicyResult:
    rng = np.random.default_rng(seed + (0 if policy == "baseline" else 1))
    n = len(loan)
    paid_day = np.full(n, -1)
    was_late = np.zeros(n, dtype=bool)
    msg_days = np.full((n_clients, 8), -100)  # the last 8 message days of each client (ring)
    last_msg = np.full(n_clients, -100)
    n_loans = int(loan.max()) + 1 if n else 1
    last_talk = np.full(n_loans, -100)
    loan_kind = np.zeros(n_loans, dtype=int)
    loan_kind[loan] = kind
    holdout = (np.random.default_rng(99).random(n_clients) < 0.05) if policy == "loanwatch" else np.zeros(n_clients, bool)
    history_calls = np.zeros(len(BUCKETS) - 1)
    history_cured = np.zeros(len(BUCKETS) - 1)
    pending_outcomes: list[tuple[int, np.ndarray, np.ndarray]] = []  # (check day, loans, buckets)
    messages = calls = breaches = 0
    for day in range(horizon):
        open_ = paid_day < 0
        late = open_ & (due < day)
        was_late |= late
        # days past due per loan: since its earliest unpaid instalment that is late
        dpd = np.zeros(last_talk.shape[0], dtype=int)
        if late.any():
            first_late = np.full(last_talk.shape[0], 10**9)
            np.minimum.at(first_late, loan[late], due[late])
            has = first_late < 10**9
            dpd[has] = day - first_late[has]
        # --- contacts of the day -------------------------------------------------------------
        messaged = np.zeros(n_clients, dtype=bool)
        if policy == "baseline":
            messaged[np.unique(client[late])] = True
        else:
            pre = open_ & ((due == day + 3) | (due == day))
            loan_dpd = dpd[loan]
            rule = late & np.isin(loan_dpd, [1, 7, 30, 85])
            candidates = np.unique(client[pre | rule])
            week = (msg_days[candidates] > day - 7).sum(axis=1)
            candidates = candidates[(week < 3) & ~holdout[candidates]]
            messaged[candidates] = True
        recent = (msg_days > day - 7).sum(axis=1)
        breaches += int((messaged & (recent >= 3)).sum())
        fresh = messaged & (last_msg < day - 3)  # a message lifts only if none in the previous 3 days
        annoyed = recent + messaged > 3
        messages += int(messaged.sum())
        idx = np.flatnonzero(messaged)
        msg_days[idx, day % 8] = day
        last_msg[idx] = day
        # calls: one per client, to clients with a loan 15+ days late
        overdue_loans = np.flatnonzero(dpd >= 15)
        called_loans = np.zeros(last_talk.shape[0], dtype=bool)
        if overdue_loans.size and capacity > 0:
            owner = np.zeros(last_talk.shape[0], dtype=int)
            owner[loan] = client
            cand = overdue_loans
            if policy == "loanwatch":
                cand = cand[(last_talk[cand] < day - 7) & ~holdout[owner[cand]]]
                bucket = np.searchsorted(BUCKETS, dpd[cand], side="left") - 1
                p_cure = (history_cured[bucket] + 1) / (history_calls[bucket] + 2)
                past_due = np.bincount(loan[late], weights=amount[late], minlength=last_talk.shape[0])[cand]
                order = np.argsort(-(p_cure * past_due), kind="stable")
            else:
                order = rng.permutation(cand.size)
            chosen_clients, picked = set(), []
            for i in order:  # the call centre's list for the day: at most `capacity` clients
                c = owner[cand[i]]
                if c in chosen_clients:
                    picked.append(cand[i])
                    continue
                if len(chosen_clients) >= capacity:
                    continue
                chosen_clients.add(c)
                picked.append(cand[i])
            picked = np.array(picked, dtype=int)
            if picked.size:
                breaches += int((last_talk[picked] >= day - 7).sum())
                calls += len(chosen_clients)
                reached = rng.random(picked.size) < REACH[loan_kind[picked]]
                called_loans[picked[reached]] = True
                last_talk[picked[reached]] = day
                bucket = np.searchsorted(BUCKETS, dpd[picked], side="left") - 1
                pending_outcomes.append((day + 7, picked, bucket))
        # --- payments of the day ----------------------------------------------------------------
        chance = np.where(due == day, np.where((last_msg[client] >= day - 3) & (last_msg[client] >= 0),
                                               ON_DUE_REMINDED[kind], ON_DUE[kind]),
                          np.where(due < day, LATE[kind], 0.0))
        chance = chance + np.where(late & fresh[client], MESSAGE_LIFT[kind], 0.0)
        chance = chance + np.where(late & called_loans[loan], CALL_LIFT[kind], 0.0)
        chance = np.where(annoyed[client] & np.isin(kind, [1, 2]), chance * ANNOYED, chance)
        pays = open_ & (due <= day) & (rng.random(n) < np.clip(chance, 0, 1))
        paid_day[pays] = day
        # what the plan learns: was a called loan cured 7 days later?
        while pending_outcomes and pending_outcomes[0][0] <= day:
            _, lns, bks = pending_outcomes.pop(0)
            still_late = np.zeros(last_talk.shape[0], dtype=bool)
            still_late[loan[(paid_day < 0) & (due < day)]] = True
            np.add.at(history_calls, bks, 1)
            np.add.at(history_cured, bks, (~still_late[lns]).astype(float))
    paid = paid_day >= 0
    late_loans = np.unique(loan[was_late])
    still = np.unique(loan[(paid_day < 0) & (due < horizon)])
    return PolicyResult(
        policy=policy, messages=messages, calls=calls,
        amount_recovered=round(float(amount[paid].sum()), 2),
        paid_after_due=round(float(amount[paid & (paid_day > due)].sum()), 2),
        past_due_at_end=round(float(amount[~paid].sum()), 2),
        loans_late=int(len(late_loans)), loans_cured=int(len(np.setdiff1d(late_loans, still))),
        cure_rate=round(len(np.setdiff1d(late_loans, still)) / max(1, len(late_loans)), 4),
        cap_breaches=breaches,
    )


def as_rows(results: list[PolicyResult]) -> tuple[list[str], list[tuple]]:
    cols = ["policy", "messages", "calls", "amount_recovered", "paid_after_due", "past_due_at_end",
            "loans_late", "loans_cured", "cure_rate", "cap_breaches"]
    return cols, [tuple(getattr(r, c) for c in cols) for r in results]


__all__ = ["simulate", "as_rows", "PolicyResult", "TYPES"]

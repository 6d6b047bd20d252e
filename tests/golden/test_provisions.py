"""Provisions, the transition matrix, the forecast and its back-test (METRICS §9-§10), by hand.

Nine loans in USD (tests/golden/provisions/), all issued in January 2024, interest-free except L1.
Month ends 01-31, 02-29, 03-31, 04-30; the data date is 2024-04-30 (L7's last payment), itself a
month end, so there is no partial month. D = 2024-04-30 unless said.

  L1 installment 1800 at 12 %, 18 × 100 principal due the 15th (2024-02-15 .. 2025-07-15), interest
     1 % of the balance before each (18.00, 17.00, ...), each paid on its day (118, 117, 116):
     current throughout, principal 1800, 1700, 1600, 1500.
  L2 cash 600 due 01-10, never paid: DPD 21, 50, 81, 111: 1-30, 31-60, 61-90, default.
  L3 bnpl 400 due 01-15 and 400 due 02-15; 400 paid 04-10 (the first): DPD 16, 45, 76, then 75 at
     04-30 (counted from 02-15): 1-30, 31-60, 61-90, 61-90; principal 800, 800, 800, 400. Matured.
  L4 cash 1000 (500 due 02-10, 03-10), nothing paid; written off 03-05 with 1000 on the book;
     recoveries 300 on 03-20 and 100 on 04-20.
  L5 cash 500 due 02-20, nothing paid; written off 03-28 with 500; a recovery of 150 on 04-15.
  L6 bnpl 400 (200 due 02-20, 03-20), all paid 02-10: closed in February.
  L7 cash 900 (300 due 02-08, 03-08, 04-08); 300 on 03-05, 600 on 04-30: 1-30 (DPD 21), 1-30
     (DPD 23, principal 600), closed on 04-30.
  L8 installment 1200 (300 due 02-03, 03-03, 04-03, 05-03); 900 on 04-20: 1-30 (DPD 26), 31-60
     (DPD 57), current at 04-30 with 300 (cured); one instalment left.
  L9 installment 1200 (200 due the 25th, 02-25 .. 07-25); 200 paid 02-25: current (1000), 1-30
     (DPD 6), 31-60 (DPD 36) at D.

States at the month ends (transition state, DPD, principal outstanding):

  loan  01-31             02-29             03-31               04-30 = D
  L1    current 0 1800    current 0 1700    current 0 1600      current 0 1500
  L2    1-30 21 600       31-60 50 600      61-90 81 600        default 111 600
  L3    1-30 16 800       31-60 45 800      61-90 76 800        61-90 75 400
  L4    current 0 1000    1-30 19 1000      default (w/o)       -
  L5    current 0 500     1-30 9 500        default (w/o)       -
  L6    current 0 400     closed            -                   -
  L7    current 0 900     1-30 21 900       1-30 23 600         closed
  L8    current 0 1200    1-30 26 1200      31-60 57 1200       current 0 300
  L9    current 0 1200    current 0 1000    1-30 6 1000         31-60 36 1000

Loan-month moves, weighed by the principal at S(m−1) (marts.fct_state_transitions):
  2024-02: L1 current→current 1800; L2 1-30→31-60 600; L3 1-30→31-60 800; L4 current→1-30 1000;
           L5 current→1-30 500; L6 current→closed 400; L7 current→1-30 900; L8 current→1-30 1200;
           L9 current→current 1200 (9 loans, 8400)
  2024-03: L1 current→current 1700; L2 31-60→61-90 600; L3 31-60→61-90 800; L4 1-30→default 1000
           (written off); L5 1-30→default 500 (written off); L7 1-30→1-30 900; L8 1-30→31-60 1200;
           L9 current→1-30 1000 (8 loans, 7700)
  2024-04: L1 current→current 1600; L2 61-90→default 600 (DPD > 90); L3 61-90→61-90 800; L7
           1-30→closed 600; L8 31-60→current 1200; L9 1-30→31-60 1000 (6 loans, 5800)

Transition matrix at D: months Feb, Mar, Apr (3: the first month end, 01-31, is S(m−1) of the
first). Pooled weights, row totals: current 11300 (1800+1000+500+400+900+1200+1200 + 1700+1000 +
1600), 1-30 6600, 31-60 2600, 61-90 1400.
  current → current 6300/11300 = 63/113 = 0.557522; → 1-30 4600 = 46/113 = 0.407080; → closed 400 =
            4/113 = 0.035398
  1-30    → 1-30 900/6600 = 3/22 = 0.136364; → 31-60 3600 = 6/11 = 0.545455; → default 1500 = 5/22 =
            0.227273; → closed 600 = 1/11 = 0.090909
  31-60   → current 1200/2600 = 6/13 = 0.461538; → 61-90 1400 = 7/13 = 0.538462
  61-90   → 61-90 800/1400 = 4/7 = 0.571429; → default 600 = 3/7 = 0.428571
  default, closed: absorbing, 1 on the diagonal, weight null.
With count weights (loan-months): current 10 → 4/10, 5/10, closed 1/10; 1-30 8 → 1/8, 31-60 4/8,
default 2/8, closed 1/8; 31-60 3 → current 1/3, 61-90 2/3; 61-90 2 → 1/2, default 1/2.
Fewer months: at 03-31 two months (Feb, Mar) and 61-90 has no weight (kept at 1); at 04-15 the
same (April's end is after it); at 02-29 one month, no weight for 31-60 and 61-90; at 01-31 none,
every transient state without weight (P = I).

PD: CPD_i(t) = Σ_k P_ik CPD_k(t−1), CPD_default = 1, CPD_closed = 0.
  t = 1: current 0, 1-30 5/22, 31-60 0, 61-90 3/7.
  t = 2: current 46/113 · 5/22 = 115/1243 = 0.092518101; 31-60 7/13 · 3/7 = 3/13; 61-90 3/7 + 4/7 ·
         3/7 = 33/49.
  t = 3: 31-60 6/13 · 115/1243 + 7/13 · 33/49 = 45849/113113 = 0.405338025.
  12-month PD (by the recurrence to t = 12): current 0.682145134, 1-30 0.784097112, 31-60
  0.841862517, 61-90 0.998787886 (= 13824509985/13841287201).

LGD with [provisions] lgd_min_loans = 2, lgd_window_months = 1: the cutoff add_months(D, −1) =
2024-03-30; written off on or before it: L4 (03-05, 1000.00 = principal on 03-04), L5 (03-28,
500.00): 2 loans, not fewer than 2. Recoveries within a month of the write-off: L4 300 (03-20 ≤
04-05; the 100 of 04-20 is after), L5 150 (04-15 ≤ 04-28).
LGD = 1 − (300 + 150) / (1000 + 500) = 0.70.
Fallbacks: the defaults (30 loans, 12 months): cutoff 2023-04-30, no loan → lgd 1.00; with
lgd_min_loans 3: 2 < 3 → 1.00; with lgd_window_months 2 the cutoff 2024-02-29 precedes both →
lgd (0.45 when set so).

ECL at D (LGD 0.70, ifrs9). Active: L1, L2, L3, L8, L9.
  L1 stage 1 (current, principal 1500, r = 0.12, DF(t) = 1.01^−t). Last due 2025-07-15:
     add_months(D, 14) = 2025-06-30 < it ≤ add_months(D, 15) = 2025-07-30, so T = 15; stage 1 sums
     t = 1..12. EAD(t) = 1500 − 100 (t − 1) (one instalment due in each (D, add_months(D, t−1)]).
       t  add_months(D,t−1)  mPD_current(t)  EAD   DF           0.7·mPD·EAD·DF
       1  2024-04-30         0               1500  0.990099010   0
       2  2024-05-30         0.092518101     1400  0.980296049  88.881227
       3  2024-06-30         0.064196993     1300  0.970590148  56.701162
       4  2024-07-30         0.088752416     1200  0.960980344  71.643035
       5  2024-08-30         0.095465270     1100  0.951465688  69.940585
       6  2024-09-30         0.082805221     1000  0.942045235  54.604385
       7  2024-10-30         0.068855999      900  0.932718055  40.460637
       8  2024-11-30         0.056729709      800  0.923483222  29.337803
       9  2024-12-30         0.045737067      700  0.914339824  20.491419
      10  2025-01-30         0.036263824      600  0.905286955  13.788250
      11  2025-02-28         0.028518918      500  0.896323718   8.946764
      12  2025-03-30         0.022301615      400  0.887449225   5.541634
      13  2025-04-30         0.017355845      300  0.878662599   3.202486
      14  2025-05-30         0.013460352      200  0.869962970   1.639401
      15  2025-06-30         0.010414652      100  0.861349475   0.627946
     stage 1 (t ≤ 12) = 460.336900935 → 460.34; lifetime (t ≤ 15, its CECL figure) = 465.806733468
     → 465.81.
  L9 stage 2 (31-60, DPD 36 > 30, principal 1000, r = 0): last due 07-25, T = 3 (06-30 < 07-25 ≤
     07-30). EAD: 1000; 1000 − 200 (05-25) = 800; 1000 − 400 (05-25, 06-25) = 600 (the 400 overdue
     stays in). mPD_31-60: 0, 3/13, 19746/113113. ECL = 0.7 · (3/13 · 800 + 19746/113113 · 600) =
     3273000/16159 = 202.549663 → 202.55.
  L3 stage 2 (61-90, DPD 75, principal 400, matured: T = 1): 0.7 · 3/7 · 400 = 120.00.
  L8 stage 1 (current, principal 300, T = 1): mPD_current(1) = 0 → 0.00.
  L2 stage 3 (DPD 111): LGD · principal = 0.7 · 600 = 420.00 (1.00 · 600 with the fallback).

report provisions --by stage: 1: L1 + L8 = 2 loans, 1800.00, 460.34, 460.336901/1800 = 0.255743 (from
the rounded 460.34 it would be 0.255744: coverage is the exact sum's); 2: L9 + L3 = 1400.00,
322.549663 → 322.55, 0.230393; 3: L2, 600.00, 420.00, 0.700000; (all) 5, 3800.00, 1202.886564 →
1202.89, 0.316549 (0.316550 from the rounded sum).

Forecast from M = 2024-04 (S(M) = D), x by principal at 04-30: current 1800 (L1 1500 + L8 300),
31-60 1000, 61-90 400, default 600: x = (9/19, 0, 5/19, 2/19, 3/19, 0) of 3800. May by hand:
current 1800 · 63/113 + 1000 · 6/13 = 1465.08 (0.385547); 1-30 1800 · 46/113 = 732.74; 61-90
1000 · 7/13 + 400 · 4/7 = 767.03; default 400 · 3/7 + 600 = 771.43; closed 1800 · 4/113 = 63.72.
Later months are x · P^h (the table in the test).

Back-test, April by hand: the loans active at 03-31 by their state then (principal at 03-31):
current L1 1600; 1-30 L7 600 + L9 1000; 31-60 L8 1200; 61-90 L2 600 + L3 800: 5800, x = (8/29, 8/29,
6/29, 7/29, 0, 0). P at 03-31 (Feb + Mar, 2 months): current (9700) → current 47/97, 1-30 46/97,
closed 4/97; 1-30 (5000) → 1-30 9/50, 31-60 13/25, default 3/10; 31-60 (1400) → 61-90 1; 61-90 no
weight, kept at 1. Projected: current 1600 · 47/97 = 775.26 → 376/2813 = 0.133665; 1-30 1600 ·
46/97 + 1600 · 9/50 = 1046.76 → 0.180476; 31-60 1600 · 13/25 = 832 → 0.143448; 61-90 1200 + 1400 →
13/29 = 0.448276; default 480 → 0.082759; closed 65.98 → 0.011376. Actual at 04-30: current L1 1600
+ L8 1200 = 14/29; 31-60 L9 5/29; 61-90 L3 4/29; default L2 3/29; closed L7 3/29. Errors −0.349093,
0.180476, −0.028966, 0.310345, −0.020690, −0.092073; (all) = Σ|error| / 2 = 34517/70325 = 0.490821
(half the sum of the rounded errors would be 0.490822). February (P from no month: the identity):
(all) 10/21 = 0.476190; March (P from February alone): (all) 1384/2695 = 0.513544.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal as D
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from loanwatch.config import load_settings
from loanwatch.errors import UsageProblem
from loanwatch.reports import LoanFilter
from loanwatch.reports import provisions as pv
from loanwatch.serve import open_snapshot
from tests.conftest import cli

pytestmark = pytest.mark.integration

FIXTURE = Path(__file__).parent / "provisions"
LGD_FROM_DATA = {"LOANWATCH_PROVISIONS__LGD_MIN_LOANS": "2", "LOANWATCH_PROVISIONS__LGD_WINDOW_MONTHS": "1"}
DAY = dt.date
ORDER = ("current", "1-30", "31-60", "61-90", "default", "closed")


@pytest.fixture(scope="module")
def book(provisions_book):
    con = open_snapshot(provisions_book)
    yield provisions_book.home, con
    con.close()


def settings_of(home, **env):
    return load_settings(home, environ={**LGD_FROM_DATA, **{f"LOANWATCH_PROVISIONS__{k.upper()}": str(v) for k, v in env.items()}})


def test_the_states_and_moves_by_hand(book):
    _, con = book
    rows = con.sql("""SELECT s.loan_id, s.snapshot_date, coalesce(b.transition_state, s.state), s.dpd, s.principal_outstanding_amount
                      FROM marts.fct_loan_snapshots s LEFT JOIN marts.dpd_buckets b USING (bucket)
                      WHERE s.snapshot_date = DATE '2024-03-31' ORDER BY 1""").fetchall()
    assert [(r[0], r[2], r[3], r[4]) for r in rows] == [
        ("L1", "current", 0, D("1600.00")), ("L2", "61-90", 81, D("600.00")), ("L3", "61-90", 76, D("800.00")),
        ("L4", "written_off", 0, D("0.00")), ("L5", "written_off", 0, D("0.00")), ("L7", "1-30", 23, D("600.00")),
        ("L8", "31-60", 57, D("1200.00")), ("L9", "1-30", 6, D("1000.00"))]
    moves = con.sql("""SELECT month, from_state, to_state, loans, weight_amount FROM marts.fct_state_transitions
                       ORDER BY month, from_state, to_state""").fetchall()
    assert moves == [
        ("2024-02", "1-30", "31-60", 2, D("1400.00")), ("2024-02", "current", "1-30", 4, D("3600.00")),
        ("2024-02", "current", "closed", 1, D("400.00")), ("2024-02", "current", "current", 2, D("3000.00")),
        ("2024-03", "1-30", "1-30", 1, D("900.00")), ("2024-03", "1-30", "31-60", 1, D("1200.00")),
        ("2024-03", "1-30", "default", 2, D("1500.00")), ("2024-03", "31-60", "61-90", 2, D("1400.00")),
        ("2024-03", "current", "1-30", 1, D("1000.00")), ("2024-03", "current", "current", 1, D("1700.00")),
        ("2024-04", "1-30", "31-60", 1, D("1000.00")), ("2024-04", "1-30", "closed", 1, D("600.00")),
        ("2024-04", "31-60", "current", 1, D("1200.00")), ("2024-04", "61-90", "61-90", 1, D("800.00")),
        ("2024-04", "61-90", "default", 1, D("600.00")), ("2024-04", "current", "current", 1, D("1600.00"))]
    assert con.sql("SELECT payment_id, loan_id, written_off_date, paid_date, recovery_amount FROM marts.fct_loan_recoveries "
                   "ORDER BY 1").fetchall() == [
        ("R05", "L4", DAY(2024, 3, 5), DAY(2024, 3, 20), D("300.00")), ("R06", "L4", DAY(2024, 3, 5), DAY(2024, 4, 20), D("100.00")),
        ("R07", "L5", DAY(2024, 3, 28), DAY(2024, 4, 15), D("150.00"))]


# The 36 rows of P at 04-30: (from, to, probability, weight); absorbing rows have no weight.
MATRIX = [
    ("current", "current", "0.557522", "6300.00"), ("current", "1-30", "0.407080", "4600.00"),
    ("current", "31-60", "0.000000", "0.00"), ("current", "61-90", "0.000000", "0.00"),
    ("current", "default", "0.000000", "0.00"), ("current", "closed", "0.035398", "400.00"),
    ("1-30", "current", "0.000000", "0.00"), ("1-30", "1-30", "0.136364", "900.00"),
    ("1-30", "31-60", "0.545455", "3600.00"), ("1-30", "61-90", "0.000000", "0.00"),
    ("1-30", "default", "0.227273", "1500.00"), ("1-30", "closed", "0.090909", "600.00"),
    ("31-60", "current", "0.461538", "1200.00"), ("31-60", "1-30", "0.000000", "0.00"),
    ("31-60", "31-60", "0.000000", "0.00"), ("31-60", "61-90", "0.538462", "1400.00"),
    ("31-60", "default", "0.000000", "0.00"), ("31-60", "closed", "0.000000", "0.00"),
    ("61-90", "current", "0.000000", "0.00"), ("61-90", "1-30", "0.000000", "0.00"),
    ("61-90", "31-60", "0.000000", "0.00"), ("61-90", "61-90", "0.571429", "800.00"),
    ("61-90", "default", "0.428571", "600.00"), ("61-90", "closed", "0.000000", "0.00"),
    *[(a, b, "1.000000" if a == b else "0.000000", None) for a in ("default", "closed")
      for b in ("current", "1-30", "31-60", "61-90", "default", "closed")],
]


def test_the_transition_matrix_by_hand(book):
    home, con = book
    table = pv.transition_matrix(con, settings=settings_of(home))
    assert table.columns[:5] == ["from_state", "to_state", "probability", "weight", "months"]
    assert [r[:5] for r in table.rows] == [(a, b, D(p), D(w) if w else None, 3) for a, b, p, w in MATRIX]
    assert {r[0]: r[5] for r in table.rows} == {s: None for s in ("current", "1-30", "31-60", "61-90")} | {
        "default": "absorbing: not estimated", "closed": "absorbing: not estimated"}
    assert table.notes == ["the transition matrix rests on 3 months (2024-02 to 2024-04), fewer than the 12 of "
                           "[provisions] pd_window_months: the data is shorter"]
    # count weights: loan-months
    counted = {(r[0], r[1]): (r[2], r[3]) for r in pv.transition_matrix(con, settings=settings_of(home, pd_weight="count")).rows}
    assert counted[("current", "current")] == (D("0.400000"), 4) and counted[("current", "1-30")] == (D("0.500000"), 5)
    assert counted[("current", "closed")] == (D("0.100000"), 1) and counted[("1-30", "1-30")] == (D("0.125000"), 1)
    assert counted[("1-30", "31-60")] == (D("0.500000"), 4) and counted[("1-30", "default")] == (D("0.250000"), 2)
    assert counted[("31-60", "current")] == (D("0.333333"), 1) and counted[("31-60", "61-90")] == (D("0.666667"), 2)
    assert counted[("61-90", "61-90")] == (D("0.500000"), 1) and counted[("61-90", "default")] == (D("0.500000"), 1)


def test_fewer_months_before_enough_history_said_so(book):
    home, con = book
    s = settings_of(home)
    for day, months, unweighted in [(DAY(2024, 3, 31), 2, {"61-90"}), (DAY(2024, 4, 15), 2, {"61-90"}),
                                    (DAY(2024, 2, 29), 1, {"31-60", "61-90"}),
                                    (DAY(2024, 1, 31), 0, {"current", "1-30", "31-60", "61-90"})]:
        table = pv.transition_matrix(con, as_of=day, settings=s)
        assert {r[4] for r in table.rows} == {months}, day
        assert {r[0] for r in table.rows if r[5] == "no weight: kept at 1"} == unweighted, day
        for r in table.rows:  # kept at 1 on the diagonal
            if r[0] in unweighted:
                assert r[2] == (D("1.000000") if r[0] == r[1] else D("0.000000"))
        said = " ".join(table.notes)
        assert (f"rests on {months} month" in said) if months else ("the transition matrix is the identity" in said), said
        if months:
            assert f"no weight in the window for {', '.join(s for s in ORDER if s in unweighted)}: kept at 1" in said
    p = {(r[0], r[1]): r[2] for r in pv.transition_matrix(con, as_of=DAY(2024, 2, 29), settings=s).rows}
    assert (p[("current", "current")], p[("current", "1-30")], p[("current", "closed")], p[("1-30", "31-60")]) == (
        D("0.428571"), D("0.514286"), D("0.057143"), D("1.000000"))  # 3/7, 18/35, 2/35 of 7000; 1400 of 1400
    # an as-of date after the data date (a projection) estimates from the data up to the data date
    table = pv.transition_matrix(con, as_of=DAY(2024, 6, 30), settings=s)
    assert [r[:5] for r in table.rows] == [(a, b, D(p), D(w) if w else None, 3) for a, b, p, w in MATRIX]
    assert "use the data up to the data date 2024-04-30 (the as-of date 2024-06-30 is a projection)" in table.notes[0]


def test_the_twelve_month_pd_by_hand(book):
    _, con = book
    p = pv.estimate(pv.load_book(con, "USD", "balance"), DAY(2024, 4, 30), 12)
    cpd = np.cumsum(pv.marginal_pd(p.array(), p.book.default, 15), axis=0)
    assert np.allclose(cpd[0], [0, 5 / 22, 0, 3 / 7, 1, 0], atol=1e-12, rtol=0)
    assert np.allclose(cpd[1][:4], [115 / 1243, 0.258264463, 3 / 13, 33 / 49], atol=1e-9, rtol=0)
    assert abs(cpd[2][2] - 45849 / 113113) < 1e-12
    assert np.allclose(cpd[11], [0.682145134, 0.784097112, 0.841862517, 13824509985 / 13841287201, 1, 0], atol=1e-9, rtol=0)


def test_lgd_from_recoveries_and_its_fallbacks(book):
    home, con = book
    s = pv.ProvisionSettings.of(settings_of(home))
    lgd = pv.loss_given_default(con, DAY(2024, 4, 30), "USD", s)
    assert (lgd.value, lgd.loans, lgd.written_off, lgd.recovered, lgd.cutoff, lgd.from_data) == (
        Fraction(7, 10), 2, D("1500.00"), D("450.00"), DAY(2024, 3, 30), True)
    assert lgd.note(s) == ("LGD 0.700000 = 1 − recoveries 450.00 / written off 1,500.00: 2 loans written off up to "
                           "2024-03-30, recoveries within 1 month of each write-off")
    defaults = pv.ProvisionSettings.of(load_settings(home, environ={}))
    lgd = pv.loss_given_default(con, DAY(2024, 4, 30), "USD", defaults)
    assert (lgd.value, lgd.loans, lgd.cutoff, lgd.from_data) == (1, 0, DAY(2023, 4, 30), False)
    assert lgd.note(defaults) == ("LGD 1.000000 = [provisions] lgd: 0 loans written off up to 2023-04-30, fewer than "
                                  "the 30 of [provisions] lgd_min_loans")
    lgd = pv.loss_given_default(con, DAY(2024, 4, 30), "USD", pv.ProvisionSettings.of(settings_of(home, lgd_min_loans=3)))
    assert (lgd.value, lgd.loans, lgd.from_data) == (1, 2, False)
    lgd = pv.loss_given_default(con, DAY(2024, 4, 30), "USD", pv.ProvisionSettings.of(settings_of(home, lgd_window_months=2, lgd=0.45)))
    assert (lgd.value, lgd.loans, lgd.cutoff, lgd.from_data) == (Fraction(9, 20), 0, DAY(2024, 2, 29), False)


STAGES = [("1", 2, D("1800.00"), D("460.34"), D("0.255743")), ("2", 2, D("1400.00"), D("322.55"), D("0.230393")),
          ("3", 1, D("600.00"), D("420.00"), D("0.700000")), ("(all)", 5, D("3800.00"), D("1202.89"), D("0.316549"))]


def test_provisions_by_stage_bucket_and_product_by_hand(book):
    home, con = book
    s = settings_of(home)
    table = pv.provisions(con, settings=s)
    assert table.columns == ["group", "loans", "principal_outstanding", "ecl", "coverage"]
    assert table.rows == STAGES  # coverage of the exact ECL: 0.255743 and 0.316549, not 0.255744 and 0.316550
    assert table.notes[:2] == [
        "method ifrs9: stage 1 takes 12 months of expected loss, stage 2 the lifetime; stage 2 from DPD > 30, stage 3 "
        "from DPD > 90",
        "LGD 0.700000 = 1 − recoveries 450.00 / written off 1,500.00: 2 loans written off up to 2024-03-30, recoveries "
        "within 1 month of each write-off"]
    # by bucket: L1 (+ L8, 0.00) alone in current is L1's stage-1 ECL; L9 in 31-60, L3 in 61-90, L2 in 91-180
    assert pv.provisions(con, by="bucket", settings=s).rows == [
        ("current", 2, D("1800.00"), D("460.34"), D("0.255743")), ("1-30", 0, D("0.00"), D("0.00"), None),
        ("31-60", 1, D("1000.00"), D("202.55"), D("0.202550")), ("61-90", 1, D("400.00"), D("120.00"), D("0.300000")),
        ("91-180", 1, D("600.00"), D("420.00"), D("0.700000")), ("181+", 0, D("0.00"), D("0.00"), None),
        ("(all)", 5, D("3800.00"), D("1202.89"), D("0.316549"))]
    # by product: installment = L1 460.336901 + L8 0 + L9 202.549663 = 662.886564 → 662.89, 0.236745 (0.236746 from 662.89)
    assert pv.provisions(con, by="product", settings=s).rows == [
        ("bnpl", 1, D("400.00"), D("120.00"), D("0.300000")), ("cash", 1, D("600.00"), D("420.00"), D("0.700000")),
        ("installment", 3, D("2800.00"), D("662.89"), D("0.236745")), ("(all)", 5, D("3800.00"), D("1202.89"), D("0.316549"))]


def test_provisions_cecl_the_lgd_fallback_and_a_filter(book):
    home, con = book
    # CECL: L1 takes its lifetime sum, 465.81; the rest is unchanged
    assert pv.provisions(con, method="cecl", settings=settings_of(home)).rows == [
        ("1", 2, D("1800.00"), D("465.81"), D("0.258782")), *STAGES[1:3], ("(all)", 5, D("3800.00"), D("1208.36"), D("0.317989"))]
    assert pv.provisions(con, settings=settings_of(home, method="cecl")).rows[0][3] == D("465.81")
    # the defaults: LGD 1.00 (the fallback): every ECL / 0.7
    assert pv.provisions(con, settings=load_settings(home, environ={})).rows == [
        ("1", 2, D("1800.00"), D("657.62"), D("0.365347")), ("2", 2, D("1400.00"), D("460.79"), D("0.329132")),
        ("3", 1, D("600.00"), D("600.00"), D("1.000000")), ("(all)", 5, D("3800.00"), D("1718.41"), D("0.452213"))]
    # a filter selects whose ECL is summed; P and LGD stay the book's: L1, L8, L9
    assert pv.provisions(con, f=LoanFilter(product="installment"), settings=settings_of(home)).rows == [
        ("1", 2, D("1800.00"), D("460.34"), D("0.255743")), ("2", 1, D("1000.00"), D("202.55"), D("0.202550")),
        ("3", 0, D("0.00"), D("0.00"), None), ("(all)", 3, D("2800.00"), D("662.89"), D("0.236745"))]
    # stage 3 from DPD > 60: L3 (DPD 75) takes LGD · principal = 0.7 · 400 = 280.00
    rows = pv.provisions(con, settings=settings_of(home, stage2_dpd=30, stage3_dpd=60)).rows
    assert rows[1:3] == [("2", 1, D("1000.00"), D("202.55"), D("0.202550")), ("3", 2, D("1000.00"), D("700.00"), D("0.700000"))]
    with pytest.raises(UsageProblem, match="--by 'region': use one of stage, product, bucket"):
        pv.provisions(con, by="region", settings=settings_of(home))
    # equal thresholds: no stage 2, and the line says so
    said = pv.provisions(con, settings=settings_of(home, stage2_dpd=90, stage3_dpd=90)).notes[0]
    assert said.endswith("; no stage 2 ([provisions] stage2_dpd = stage3_dpd), stage 3 from DPD > 90")


def test_a_matrix_that_never_reaches_default_is_said(book):
    """At 02-29 the matrix rests on February alone: current moves to current, 1-30 and closed, 1-30 to
    31-60, and 31-60 and 61-90 have no weight (kept at 1): no active state reaches default, so every PD
    is 0 and stages 1 and 2 carry nothing; the note says it of the whole book, not of one state."""
    home, con = book
    table = pv.provisions(con, as_of=dt.date(2024, 2, 29), settings=settings_of(home))
    assert ("no active state reaches default in this matrix (the moves into default are not in its months): every PD "
            "is 0, so stages 1 and 2 carry no expected loss") in table.notes
    assert all(row[3] == 0 for row in table.rows if row[0] in ("1", "2"))
    # at 04-30 the matrix reaches default: no such note
    assert not any("reaches default" in note for note in pv.provisions(con, settings=settings_of(home)).notes)


FORECAST = {  # month: shares (principal) in state order: current, 1-30, 31-60, 61-90, default, closed
    "2024-05": [("0.385547", "1465.08"), ("0.192827", "732.74"), ("0.000000", "0.00"), ("0.201851", "767.03"),
                ("0.203008", "771.43"), ("0.016768", "63.72")],
    "2024-06": [("0.214951", "816.81"), ("0.183243", "696.32"), ("0.105178", "399.68"), ("0.115343", "438.30"),
                ("0.333339", "1266.69"), ("0.047945", "182.19")],
    "2024-07": [("0.168384", "639.86"), ("0.112490", "427.46"), ("0.099951", "379.81"), ("0.122545", "465.67"),
                ("0.424418", "1612.79"), ("0.072212", "274.41")],
    "2024-08": [("0.140009", "532.03"), ("0.083885", "318.76"), ("0.061358", "233.16"), ("0.123845", "470.61"),
                ("0.502503", "1909.51"), ("0.088399", "335.92")],
    "2024-09": [("0.106377", "404.23"), ("0.068434", "260.05"), ("0.045756", "173.87"), ("0.103808", "394.47"),
                ("0.574645", "2183.65"), ("0.100981", "383.73")],
    "2024-10": [("0.080426", "305.62"), ("0.052636", "200.02"), ("0.037327", "141.84"), ("0.083956", "319.03"),
                ("0.634687", "2411.81"), ("0.110968", "421.68")],
}
def test_the_forecast_by_hand(book):
    home, con = book
    table = pv.forecast(con, settings=settings_of(home))
    assert table.columns == ["month", "state", "share", "principal"]
    assert table.rows == [(m, s, D(x), D(p)) for m, shares in FORECAST.items() for s, (x, p) in zip(ORDER, shares)]
    assert [r[:3] for r in pv.forecast(con, months=1, settings=settings_of(home)).rows] == [
        ("2024-05", s, D(x)) for s, (x, _) in zip(ORDER, FORECAST["2024-05"])]
    with pytest.raises(UsageProblem, match="--months 0: give a number of months from 1 to 600"):
        pv.forecast(con, months=0)
    # from January (P at 01-31 from no month: the identity) the shares stay put: 01-31's principal by state
    january = pv.forecast(con, months=1, as_of=DAY(2024, 1, 31), settings=settings_of(home))
    assert [(r[1], r[3]) for r in january.rows] == [("current", D("7000.00")), ("1-30", D("1400.00")), ("31-60", D("0.00")),
                                                   ("61-90", D("0.00")), ("default", D("0.00")), ("closed", D("0.00"))]
    assert "the transition matrix is the identity" in " ".join(january.notes)


def test_the_backtest_by_hand(book):
    home, con = book
    table = pv.forecast_backtest(con, settings=settings_of(home))
    assert table.columns[:5] == ["month", "state", "projected_share", "actual_share", "error"]
    april = [r for r in table.rows if r[0] == "2024-04"]
    assert april == [
        ("2024-04", "current", D("0.133665"), D("0.482759"), D("-0.349093"), 2),
        ("2024-04", "1-30", D("0.180476"), D("0.000000"), D("0.180476"), 2),
        ("2024-04", "31-60", D("0.143448"), D("0.172414"), D("-0.028966"), 2),
        ("2024-04", "61-90", D("0.448276"), D("0.137931"), D("0.310345"), 2),
        ("2024-04", "default", D("0.082759"), D("0.103448"), D("-0.020690"), 2),
        ("2024-04", "closed", D("0.011376"), D("0.103448"), D("-0.092073"), 2),
        ("2024-04", "(all)", None, None, D("0.490821"), 2),  # not 0.490822, half the sum of the rounded errors
    ]
    assert [(r[0], r[4], r[5]) for r in table.rows if r[1] == "(all)"] == [
        ("2024-02", D("0.476190"), 0), ("2024-03", D("0.513544"), 1), ("2024-04", D("0.490821"), 2)]
    assert table.notes == [
        "3 months to test, fewer than the 6 of [provisions] backtest_months: the data is shorter",
        "2024-02: P at 2024-01-31 from 0 months, no weight for current, 1-30, 31-60, 61-90 (kept at 1)",
        "2024-03: P at 2024-02-29 from 1 month, no weight for 31-60, 61-90 (kept at 1)",
        "2024-04: P at 2024-03-31 from 2 months, no weight for 61-90 (kept at 1)"]
    # backtest_months 1: April alone
    assert {r[0] for r in pv.forecast_backtest(con, settings=settings_of(home, backtest_months=1)).rows} == {"2024-04"}


# --- through the CLI: `loanwatch report provisions|transition-matrix|forecast|forecast-backtest` ---

def report(home, *args, env=LGD_FROM_DATA):
    """A report through the CLI, the [provisions] settings from the environment as a user's."""
    result = cli("report", *args, home=home, env=env)
    assert result.exit_code == 0, result.stderr
    return result


def test_the_cli_gives_the_provisions_by_hand(book):
    home, _ = book
    result = report(home, "provisions", "-f", "csv")
    assert result.stdout.splitlines() == ["group,loans,principal_outstanding,ecl,coverage",
                                          *(",".join(str(v) for v in row) for row in STAGES)]
    # what the figures rest on: on stderr with csv and json (stdout is the program's)
    assert result.stderr.splitlines() == [
        "note: method ifrs9: stage 1 takes 12 months of expected loss, stage 2 the lifetime; stage 2 from DPD > 30, "
        "stage 3 from DPD > 90",
        "note: LGD 0.700000 = 1 − recoveries 450.00 / written off 1,500.00: 2 loans written off up to 2024-03-30, "
        "recoveries within 1 month of each write-off",
        "note: the transition matrix rests on 3 months (2024-02 to 2024-04), fewer than the 12 of [provisions] "
        "pd_window_months: the data is shorter"]
    assert report(home, "provisions", "--by", "product", "-f", "csv").stdout.splitlines()[1:] == [
        "bnpl,1,400.00,120.00,0.300000", "cash,1,600.00,420.00,0.700000", "installment,3,2800.00,662.89,0.236745",
        "(all),5,3800.00,1202.89,0.316549"]
    # --method cecl: L1 takes its lifetime sum, 465.81; [provisions] method the same
    cecl = ["1,2,1800.00,465.81,0.258782", "2,2,1400.00,322.55,0.230393", "3,1,600.00,420.00,0.700000",
            "(all),5,3800.00,1208.36,0.317989"]
    assert report(home, "provisions", "--method", "cecl", "-f", "csv").stdout.splitlines()[1:] == cecl
    assert report(home, "provisions", "-f", "csv", env={**LGD_FROM_DATA, "LOANWATCH_PROVISIONS__METHOD": "cecl"}
                  ).stdout.splitlines()[1:] == cecl
    # a filter selects whose ECL is summed (L1, L8, L9), P and LGD stay the book's
    assert report(home, "provisions", "--product", "installment", "--by", "bucket", "-f", "csv").stdout.splitlines()[-1] == (
        "(all),3,2800.00,662.89,0.236745")
    # the defaults (no settings): the LGD falls back to 1.00
    assert report(home, "provisions", "-f", "csv", env={}).stdout.splitlines()[-1] == "(all),5,3800.00,1718.41,0.452213"
    # for people: formatted, and what the figures rest on under the table
    text = " ".join(report(home, "provisions", "--as-of", "2024-04-30", env={**LGD_FROM_DATA, "COLUMNS": "200"}).stdout.split())
    assert "Expected credit loss (USD)" in text and "1,202.89" in text and "31.7 %" in text
    assert "as of 2024-04-30 · money in USD · all loans" in text and "LGD 0.700000 = 1 − recoveries 450.00" in text


def test_the_cli_gives_the_matrix_the_forecast_and_the_backtest_by_hand(book):
    home, _ = book
    result = report(home, "transition-matrix", "-f", "csv")
    assert [tuple(line.split(",")[:5]) for line in result.stdout.splitlines()[1:]] == [
        (a, b, p, w or "", "3") for a, b, p, w in MATRIX]
    # fewer months, said so: at 03-31 two months, 61-90 without weight (its rows' note, and the line under the table)
    text = " ".join(report(home, "transition-matrix", "--as-of", "2024-03-31", env={**LGD_FROM_DATA, "COLUMNS": "200"}
                           ).stdout.split())
    assert "no weight: kept at 1" in text and "the transition matrix rests on 2 months (2024-02 to 2024-03)" in text
    assert "as of 2024-03-31 · money in USD · the whole book" in text
    rows = report(home, "forecast", "--months", "1", "-f", "csv").stdout.splitlines()
    assert rows == ["month,state,share,principal", *(f"2024-05,{s},{x},{p}" for s, (x, p) in zip(ORDER, FORECAST["2024-05"]))]
    assert len(report(home, "forecast", "-f", "csv").stdout.splitlines()) == 1 + 6 * 6  # six months by default
    rows = report(home, "forecast-backtest", "-f", "csv").stdout.splitlines()
    assert rows[0] == "month,state,projected_share,actual_share,error,months"
    assert [r for r in rows if ",(all)," in r] == ["2024-02,(all),,,0.476190,0", "2024-03,(all),,,0.513544,1",
                                                   "2024-04,(all),,,0.490821,2"]
    assert "2024-04,current,0.133665,0.482759,-0.349093,2" in rows
    # the book's reports take --currency (the only one here) and no loan filter
    assert report(home, "forecast", "--months", "1", "--currency", "usd", "-f", "csv").stdout.splitlines() == \
        report(home, "forecast", "--months", "1", "-f", "csv").stdout.splitlines()


def test_the_html_report_has_the_provisions_section(book, tmp_path):
    """`report html`: the page's section (the stage table by hand, the charts, the notes under the
    figures), with the home's settings."""
    pytest.importorskip("plotly")
    home, _ = book
    out = tmp_path / "r.html"
    assert report(home, "html", "--out", str(out)).exit_code == 0
    text = out.read_text()
    section = text[text.index("<h2>Provisions (expected credit loss)</h2>"):]
    assert [t for t in ("Transition matrix", "Forecast", "Forecast back-test") if f"<h2>{t}</h2>" in section] == [
        "Transition matrix", "Forecast", "Forecast back-test"]
    cells = [c for c in re.findall(r"<td[^>]*>([^<]*)</td>", section)][:20]
    assert cells == ["1", "2", "1,800.00", "460.34", "25.6 %", "2", "2", "1,400.00", "322.55", "23.0 %",
                     "3", "1", "600.00", "420.00", "70.0 %", "(all)", "5", "3,800.00", "1,202.89", "31.7 %"]
    assert ('<p class="note">LGD 0.700000 = 1 − recoveries 450.00 / written off 1,500.00: 2 loans written off up to '
            '2024-03-30, recoveries within 1 month of each write-off</p>') in section
    for key in ("provisions-by-product", "coverage-by-product", "transition-matrix", "forecast", "forecast-error"):
        assert f'id="{key}"' in section, key

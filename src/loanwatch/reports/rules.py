"""What the reports mean by active, overdue, overdue share and portfolio at risk (METRICS §3-5): the
reader-side rules, in one place.

The marts publish the flags where a date is fixed: ``is_active`` on each state interval of
``fct_loan_states``; ``is_active``, ``is_overdue`` and ``is_par30/60/90`` on each loan and snapshot
date of ``fct_loan_snapshots`` (written once in fct_loan_states.sql and fct_loan_snapshots.sql, the
thresholds in macros/delinquency.sql par_days: tests/unit/test_rules.py holds PAR_DAYS to it). A report
at a date between snapshots reads the state timeline, and ``timeline_flags`` names the same flags
there. The figures count flags: no report spells a list of states or a DPD threshold.

The IFRS 9 stage (METRICS §9) is a reader-side rule too: its thresholds are settings
([provisions] stage2_dpd, stage3_dpd) read when a report runs, so ``stage_sql`` is its one home.

The contact hold-out group is published too (core.clients.is_holdout, as the last build drew it);
``holdout_sql`` is the same draw for readers that draw with the settings of the moment (the contact
plan, after a change of [notify] holdout_share, before the next build) or before any warehouse
exists (the generator).
"""

from __future__ import annotations

from loanwatch.reports import ratio6

# The portfolio-at-risk thresholds (METRICS §5): active with DPD > X. The marts' is_par{X} columns
# (macros/delinquency.sql par_days) are these; `buckets` shows a PAR{X} row for each.
PAR_DAYS = (30, 60, 90)
PAR_FLAGS = tuple(f"is_par{days}" for days in PAR_DAYS)
# The flags a report counts, beside is_active: in this order wherever rows are unioned.
FLAGS = ("is_overdue", *PAR_FLAGS)


def timeline_flags(state: str, dpd: str, is_active: str) -> str:
    """The snapshot's flags (``FLAGS``, as select-list items) for a row of the state timeline,
    from its state, DPD and is_active expressions."""
    return ", ".join([f"{state} = 'overdue' AS is_overdue",
                      *(f"({is_active}) AND {dpd} > {days} AS is_par{days}" for days in PAR_DAYS)])


def count_of(flag: str) -> str:
    """The loans of a group with the flag."""
    return f"count(*) FILTER (WHERE {flag})"


def principal_of(flag: str, principal: str = "principal_outstanding") -> str:
    """The principal outstanding of a group's loans with the flag (0 when none)."""
    return f"coalesce(sum({principal}) FILTER (WHERE {flag}), 0)"


def overdue_share(overdue: str = count_of("is_overdue"), active: str = count_of("is_active")) -> str:
    """METRICS §4: overdue loans / active loans, to 6 decimals (null without active loans). The
    arguments are a group's counts, or columns holding them."""
    return ratio6(overdue, active)


def amount_share(part: str, whole: str) -> str:
    """A part of an amount over the whole, to 6 decimals, exact in cents (overdue amount share,
    PAR, NPL: METRICS §4-5)."""
    return ratio6(f"round({part} * 100)", f"round({whole} * 100)")


# The IFRS 9 stages (METRICS §9), in report order.
STAGES = (1, 2, 3)


def stage_sql(dpd: str) -> str:
    """DuckDB SQL: the stage of an active loan from its DPD (METRICS §9): 3 when DPD > [provisions]
    stage3_dpd, 2 when DPD > stage2_dpd, else 1. Parameters: $stage2_dpd, $stage3_dpd. The
    transition states keep their own bounds (marts.dpd_buckets.transition_state)."""
    return f"CASE WHEN {dpd} > $stage3_dpd THEN 3 WHEN {dpd} > $stage2_dpd THEN 2 ELSE 1 END"


def holdout_sql(client_id: str) -> str:
    """DuckDB SQL: whether the client is in the contact hold-out group (METRICS §6), the draw of
    macros/delinquency.sql is_holdout: the first 32 bits of md5(client_id || salt), modulo 10000,
    below the share in basis points. Parameters: $holdout_salt, $holdout_basis_points."""
    return f"(('0x' || substr(md5({client_id} || $holdout_salt), 1, 8))::UBIGINT % 10000 < $holdout_basis_points)"


def holdout_params(settings=None) -> dict:
    """holdout_sql's parameters from these settings ([notify] holdout_share, holdout_salt; None: the
    defaults), as the dbt vars the macro reads take them."""
    from loanwatch.config import DEFAULTS
    from loanwatch.transform import DBT_VARS, var_value

    names = ("holdout_basis_points", "holdout_salt")
    return {name: var_value(name, settings.get(*DBT_VARS[name]) if settings else DEFAULTS[DBT_VARS[name][0]][DBT_VARS[name][1]])
            for name in names}

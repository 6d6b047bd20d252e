"""dbt unit tests (given/expect rows in the models' yml) on the schedule, allocation, paid-on, state, DPD, merchant-ledger,
call and transition-state SQL."""

from __future__ import annotations

import pytest

from loanwatch.engines.duckdb import DuckDBEngine
from loanwatch.transform import run_dbt


@pytest.mark.integration
def test_dbt_unit_tests_pass(golden):
    run = run_dbt(golden, "test", ["--select", "test_type:unit"], engine=DuckDBEngine(golden))
    units = [r for r in run.results if r.resource_type == "unit_test"]
    names = {r.name for r in units}
    assert {"schedule_annuity_interest_free_bullet_and_explicit",
            "allocation_interest_first_in_payment_order_with_credit",
            "paid_on_is_the_payment_that_reaches_cumulative_due",
            "incremental_paid_on_rewrites_only_the_instalments_new_payments_reach",
            "states_current_overdue_closed_written_off", "dpd_counts_the_due_day_when_the_option_is_on",
            "snapshots_dpd_bucket_and_exits", "merchant_late_event_rewrites_its_merchant_from_its_day",
            "calls_connected_and_first_login_after",
            "state_transitions_map_buckets_exits_and_skip_the_partial_month",
            "loan_days_sum_each_days_payments_and_counts", "schedule_terms_of_restructured_and_plain_loans"} <= names
    failed = [(r.name, r.message) for r in units if r.status != "pass"]
    assert not failed, failed
    assert run.success

"""The policy simulation: deterministic, and loanwatch's plan beats the daily blast on its own model."""

from __future__ import annotations

from loanwatch.notify.simulate import simulate


def test_loanwatch_collects_at_least_as_much_with_far_fewer_contacts():
    baseline, planned = simulate(3000, seed=3, horizon=90, call_capacity=25)
    assert (baseline.policy, planned.policy) == ("baseline", "loanwatch")
    assert planned.amount_recovered >= baseline.amount_recovered
    assert planned.past_due_at_end <= baseline.past_due_at_end
    assert planned.messages <= 0.6 * baseline.messages
    assert planned.calls <= 25 * 90 and baseline.calls <= 25 * 90
    assert planned.cap_breaches == 0 and baseline.cap_breaches > 0


def test_same_seed_same_result_and_no_calls_without_capacity():
    assert simulate(800, seed=5, horizon=60) == simulate(800, seed=5, horizon=60)
    baseline, planned = simulate(800, seed=5, horizon=60, call_capacity=0)
    assert baseline.calls == planned.calls == 0

"""Client notifications: the contact plan (who, why, through which channel, today).

- plan.py: the plan, set-based over the serving snapshot: the rule ladder, suppressions, caps,
  call-centre capacity ranked by expected recovery, the hold-out group.
- outbox.py: the notifier's own store (<home>/notify.duckdb): messages and delivery attempts.

Delinquency is never recomputed here: states, DPD and amounts come from the marts.
"""

{{ config(materialized='table') }}
-- The days on which a loan's state can change (int_loan_days), each with the running totals from
-- that day on (paid, principal, interest, instalments paid off, instalments past due), until the
-- next such day (valid_to). fct_loan_states turns these into states. A table, not inlined there:
-- as one statement, the two needed more memory than DuckDB could spill (the L full build failed
-- under a 3GB memory_limit); as two, each fits (docs/benchmarks.md).
-- A loan an incremental build recomputes from a day (int_loans_changed.recompute_from) has only
-- its days from then on here (int_loan_days), with totals counted from that day: fct_loan_states
-- adds what the loan's earlier rows had reached.

select
    loan_id,
    event_date as valid_from,
    coalesce(lead(event_date) over (partition by loan_id order by event_date), cast('9999-12-31' as date)) as valid_to,
    {{ money_capped('sum(paid_amount) over w') }} as cum_paid_amount,
    {{ money('sum(principal_amount) over w') }} as cum_principal_paid_amount,
    {{ money('sum(interest_amount) over w') }} as cum_interest_paid_amount,
    cast(sum(paid_count) over w as integer) as paid_instalments,
    cast(sum(due_count) over w as integer) as due_instalments
from {{ ref('int_loan_days') }}
window w as (partition by loan_id order by event_date rows between unbounded preceding and current row)

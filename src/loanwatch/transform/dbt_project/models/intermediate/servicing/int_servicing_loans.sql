{{ config(materialized='table') }}
-- The loans whose allocation is computed event by event (METRICS §2, contract v3): those with a
-- charge or an adjustment (reversed or not), or a schedule with fees or penalties
-- (servicing_loan_ids()). Every other loan keeps the cumulative form of fct_payment_allocations,
-- which gives the same figures for a loan with none of them (var servicing_all puts every loan
-- here: a test compares the two). Rebuilt whole at every build: a union of small sets.
select loans.loan_id
from {{ ref('loans') }} as loans
where not loans.is_cancelled
    and loans.loan_id in ({{ servicing_loan_ids() }})

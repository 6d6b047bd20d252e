-- One row per written-off loan: the day it was written off and the principal it still had on
-- the book then (its state interval that ends that day), which leaves the book with it (METRICS §3).
with written_off as (
    select loan_id, written_off_date
    from {{ ref('loans') }}
    where written_off_date is not null and not is_cancelled
)

select
    written_off.loan_id,
    written_off.written_off_date,
    {{ month_label('written_off.written_off_date') }} as month,
    {{ money('coalesce(before.principal_outstanding_amount, 0)') }} as principal_written_off_amount
from written_off
left join {{ ref('fct_loan_states') }} as before
    on before.loan_id = written_off.loan_id
    and before.valid_to = written_off.written_off_date
    and before.is_active

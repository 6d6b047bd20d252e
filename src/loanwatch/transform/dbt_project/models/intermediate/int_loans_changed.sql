{%- set since = since_batch() %}
-- The loans whose inputs arrived after the last successful build (since_batch()): new loan
-- versions or schedules, new payments and reversals, and the loans of payments a new reversal
-- undoes. Incremental models recompute exactly these loans.
with new_payments as (
    select loan_id, reverses
    from {{ source('raw', 'payments') }}
    where batch_id > {{ since }}
)

{{ changed_keys('loan_terms') }}
union
select loan_id from new_payments
union
select p.loan_id
from {{ source('raw', 'payments') }} as p
where p.payment_id in (select reverses from new_payments where reverses is not null)

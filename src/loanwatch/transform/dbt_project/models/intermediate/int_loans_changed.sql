{%- set since = since_batch() %}
-- The loans whose inputs arrived after the last successful build (since_batch()): new loan
-- versions or schedules, new payments and reversals, and the loans of payments a new reversal
-- undoes. Incremental models recompute exactly these loans.
--
-- recompute_from: for a loan whose new inputs are only payments later than every payment it had
-- (the common case: the next instalment is paid), the day of the first new payment. Nothing a
-- loan's day-grain rows say before that day can change (METRICS §2-3 depend only on earlier
-- events), so the models of set loan_days (macros/incremental/loan_day.sql) recompute such a loan
-- from that day on. Null: everything about the loan is recomputed.
with new_payments as (
    select loan_id, paid_at, reverses
    from {{ source('raw', 'payments') }}
    where batch_id > {{ since }}
),

new_terms as (
    {{ new_loan_terms() }}
),

reversed as (
    select loan_id from new_payments where reverses is not null
    union
    select p.loan_id
    from {{ source('raw', 'payments') }} as p
    where p.payment_id in (select reverses from new_payments where reverses is not null)
),

-- charges and waivers (contract v3), new or reversed: their loans are recomputed whole
new_servicing as (
    {%- for entity, key in [('charges', 'charge_id'), ('adjustments', 'adjustment_id')] %}
    select loan_id from {{ source('raw', entity) }} where batch_id > {{ since }}
    union
    select e.loan_id
    from {{ source('raw', entity) }} as e
    where e.{{ key }} in (select reverses from {{ source('raw', entity) }} where batch_id > {{ since }} and reverses is not null)
    {{ 'union' if not loop.last }}
    {%- endfor %}
),

changed as (
    select loan_id from new_terms
    union
    select loan_id from new_payments
    union
    select loan_id from reversed
    union
    select loan_id from new_servicing
),

first_new as (
    select loan_id, min(paid_at) as first_paid_at
    from new_payments
    group by loan_id
),

-- a loan allocated event by event (int_servicing_loans) is recomputed whole: a join, not a
-- NOT IN in the select list, which Spark runs as a nested loop (50 s at M)
servicing as (
    select distinct ids.loan_id from ({{ servicing_loan_ids() }}) as ids
),

last_old as (
    select loan_id, max(paid_at) as last_paid_at
    from {{ source('raw', 'payments') }}
    where batch_id <= {{ since }} and loan_id in (select loan_id from first_new)
    group by loan_id
)

select
    changed.loan_id,
    case
        when new_terms.loan_id is null
            and reversed.loan_id is null
            and servicing.loan_id is null
            and (last_old.last_paid_at is null or first_new.first_paid_at > last_old.last_paid_at)
            -- the same day as stg_payments.paid_date
            then cast(first_new.first_paid_at as date)
    end as recompute_from
from changed
left join new_terms on new_terms.loan_id = changed.loan_id
left join reversed on reversed.loan_id = changed.loan_id
left join first_new on first_new.loan_id = changed.loan_id
left join last_old on last_old.loan_id = changed.loan_id
left join servicing on servicing.loan_id = changed.loan_id

{{ config(severity='warn') }}
-- Waivers that forgive more than was open of their component when they were made (METRICS §2):
-- the excess is ignored; `ignored_amount` says how much (all of it when nothing was open).
-- (as the schedule in force on the waiver's day applied it)
with applied as (
    select regime_key, event_id, -sum(amount) as applied_amount
    from {{ ref('int_servicing_ledger') }}
    where kind = 'waiver'
    group by regime_key, event_id
)

select
    w.event_id as adjustment_id,
    w.loan_id,
    w.component,
    w.amount,
    {{ money('coalesce(a.applied_amount, 0)') }} as applied_amount,
    {{ money('w.amount - coalesce(a.applied_amount, 0)') }} as ignored_amount
from {{ ref('int_servicing_events') }} as w
left join applied as a on a.regime_key = w.regime_key and a.event_id = w.event_id
where w.kind = 'waiver' and w.is_in_force and w.amount > coalesce(a.applied_amount, 0)

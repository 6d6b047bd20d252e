{{ config(severity='warn') }}
-- A restructuring's schedule (contract v3: a later effective_from, or a version's restructured_at)
-- whose principals add up neither to those of the schedule the loan was issued with (a complete
-- schedule, listing the instalments already paid too) nor to the principal outstanding at the end
-- of the day before it comes into force (a remaining one), within 0.01 x its instalments.
with later as (
    select s.loan_id, s.effective_from, s.principal_total, count(*) as instalments
    from {{ ref('int_servicing_schedules') }} as s
    inner join {{ ref('int_instalments_scheduled') }} as i
        on i.loan_id = s.loan_id and i.effective_from = s.effective_from
    where not s.is_complete
    group by s.loan_id, s.effective_from, s.principal_total
)

select
    later.loan_id,
    later.effective_from,
    later.principal_total,
    states.principal_outstanding_amount as principal_outstanding_before
from later
left join {{ ref('fct_loan_states') }} as states
    on states.loan_id = later.loan_id
    and states.valid_from <= {{ add_days('later.effective_from', -1) }}
    and {{ add_days('later.effective_from', -1) }} < states.valid_to
where abs(later.principal_total - coalesce(states.principal_outstanding_amount, 0)) > 0.01 * later.instalments

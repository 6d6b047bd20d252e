{{ config(severity='error') }}
-- Every loan's instalment principals add up to its amount (explicit schedules: within
-- 0.01 x instalments, the contract's tolerance). A restructured loan's later schedules are
-- warn_restructured_schedules'. Instalment records (repayment `schedule`) arrive
-- apart from their loan: warn_instalment_records warns about those instead.
select
    loans.loan_id,
    loans.amount,
    sum(i.principal_amount) as principal_total
from {{ ref('loans') }} as loans
inner join {{ ref('int_instalments_scheduled') }} as i on i.loan_id = loans.loan_id
where loans.loan_id not in (select loan_id from {{ ref('int_instalments_scheduled') }} where effective_from is not null)
    and not loans.is_cancelled and (loans.has_schedule or loans.repayment <> 'schedule') and {{ changed_loans_only('loans.loan_id') }}
group by loans.loan_id, loans.amount
having abs(sum(i.principal_amount) - loans.amount) > 0.01 * count(*)

{{ config(severity='error') }}
-- Principal outstanding is between 0 and the loan amount in every state interval (for a
-- restructured loan, the largest of its versions' amounts and its schedules' principals: a
-- restructuring may state the new principal as the amount, or add arrears to it).
select s.loan_id, s.valid_from, s.principal_outstanding_amount, l.amount
from {{ ref('fct_loan_states') }} as s
inner join (
    select loan_id, max(amount) as amount
    from (
        select loan_id, amount from {{ ref('loan_versions') }}
        union all
        select loan_id, principal_total from {{ ref('int_servicing_schedules') }}
    ) as amounts
    group by loan_id
) as l on l.loan_id = s.loan_id
where {{ changed_loans_only('s.loan_id') }}
  and (s.principal_outstanding_amount < 0 or s.principal_outstanding_amount > l.amount)

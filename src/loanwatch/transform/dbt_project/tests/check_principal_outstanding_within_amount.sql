{{ config(severity='error') }}
-- Principal outstanding is between 0 and the loan amount in every state interval.
select s.loan_id, s.valid_from, s.principal_outstanding_amount, l.amount
from {{ ref('fct_loan_states') }} as s
inner join {{ ref('loans') }} as l on l.loan_id = s.loan_id
where {{ changed_loans_only('s.loan_id') }}
  and (s.principal_outstanding_amount < 0 or s.principal_outstanding_amount > l.amount)

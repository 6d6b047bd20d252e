{{ config(severity='error') }}
-- Every effective payment is fully allocated: penalty + fee + interest + principal + credit = amount.
select payment_id, loan_id, amount, penalty_amount, fee_amount, interest_amount, principal_amount, credit_amount
from {{ ref('fct_payment_allocations') }}
where {{ changed_loans_only('loan_id') }}
  and (penalty_amount + fee_amount + interest_amount + principal_amount + credit_amount <> amount
       or penalty_amount < 0 or fee_amount < 0 or interest_amount < 0 or principal_amount < 0 or credit_amount < 0)

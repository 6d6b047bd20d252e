{{ config(severity='error') }}
-- Every effective payment is fully allocated: interest + principal + credit = amount.
select payment_id, loan_id, amount, interest_amount, principal_amount, credit_amount
from {{ ref('fct_payment_allocations') }}
where {{ changed_loans_only('loan_id') }}
  and (interest_amount + principal_amount + credit_amount <> amount
       or interest_amount < 0 or principal_amount < 0 or credit_amount < 0)

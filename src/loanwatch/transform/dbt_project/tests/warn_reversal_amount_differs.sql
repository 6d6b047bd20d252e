{{ config(severity='warn') }}
-- Reversals whose amount differs from the payment they void: the whole payment is still voided
-- (contract); the difference is probably a partial refund entered as a reversal.
select r.payment_id, r.loan_id, r.reversed_payment_id, r.amount as reversal_amount, p.amount as payment_amount
from {{ ref('stg_payments') }} as r
inner join {{ ref('payments') }} as p
    on p.payment_id = r.reversed_payment_id and p.loan_id = r.loan_id and p.is_reversed
where r.payment_type = 'reversal' and r.amount <> p.amount

{{ config(severity='warn') }}
-- Reversals that are not applied (contract): the payment they name is of another loan, or is
-- itself a reversal. (A payment that has not arrived: reversals_of_unknown_payments.)
select
    r.payment_id,
    r.loan_id,
    r.reversed_payment_id,
    case
        when target.payment_type = 'reversal' then 'names a reversal, not a payment'
        else 'names a payment of loan ' || target.loan_id
    end as reason
from {{ ref('stg_payments') }} as r
inner join {{ ref('stg_payments') }} as target on target.payment_id = r.reversed_payment_id
where r.payment_type = 'reversal'
    and (target.loan_id <> r.loan_id or target.payment_type = 'reversal')

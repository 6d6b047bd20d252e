{{ config(severity='warn') }}
-- Loan amounts far outside the usual range of their product: above factor x the product's
-- median (var amount_outlier_factor, config [checks] amount_outlier_factor).
with medians as (
    select coalesce(product, '') as product, {{ median('amount') }} as median_amount
    from {{ ref('loans') }}
    group by coalesce(product, '')
)

select l.loan_id, l.product, l.amount, m.median_amount
from {{ ref('loans') }} as l
inner join medians as m on m.product = coalesce(l.product, '')
where l.amount > {{ var('amount_outlier_factor') }} * m.median_amount

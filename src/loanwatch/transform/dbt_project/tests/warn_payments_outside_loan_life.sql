{{ config(severity='warn') }}
-- Payments dated before their loan's issue date or after the data date.
select p.payment_id, p.loan_id, p.paid_date, l.issue_date
from {{ ref('payments') }} as p
inner join {{ ref('loans') }} as l on l.loan_id = p.loan_id
cross join {{ ref('int_data_date') }} as d
where p.paid_date < l.issue_date or p.paid_date > d.data_date

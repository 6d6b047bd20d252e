{{ config(severity='warn') }}
-- Reconciliation with the source: loans whose reported status disagrees with the state computed
-- at the data date (source closed but a balance outstanding, source active but repaid, source
-- defaulted but current, computed written off but the source says otherwise), one row per loan.
with at_data_date as (
    select s.loan_id, s.state, s.is_active, s.principal_outstanding_amount
    from {{ ref('fct_loan_states') }} as s
    cross join {{ ref('int_data_date') }} as d
    where s.valid_from <= d.data_date and d.data_date < s.valid_to
)

select
    l.loan_id,
    l.source_status,
    a.state as computed_state,
    a.principal_outstanding_amount,
    case
        when l.source_status = 'closed' and a.is_active then 'source closed, balance outstanding'
        when l.source_status = 'active' and a.state = 'closed' then 'source active, loan repaid'
        when l.source_status = 'defaulted' and a.state = 'current' then 'source defaulted, loan current'
        when l.source_status = 'defaulted' and a.state = 'closed' then 'source defaulted, loan repaid'
    end as mismatch
from {{ ref('loans') }} as l
inner join at_data_date as a on a.loan_id = l.loan_id
where (l.source_status = 'closed' and a.is_active)
   or (l.source_status = 'active' and a.state = 'closed')
   or (l.source_status = 'defaulted' and a.state in ('current', 'closed'))

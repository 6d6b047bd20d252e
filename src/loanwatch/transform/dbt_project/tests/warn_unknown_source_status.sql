{{ config(severity='warn') }}
-- Source statuses outside the contract's list are kept, and flagged here.
select loan_id, source_status
from {{ ref('loans') }}
where source_status is not null
  and source_status not in ('active', 'closed', 'defaulted', 'written_off', 'cancelled')

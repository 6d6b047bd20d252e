{{ config(severity='warn') }}
-- Loans whose interest_rate is above [checks] max_interest_rate (default 5, i.e. 500 % a year):
-- the contract's rate is a fraction (0.24 = 24 %), so 24 is most likely a percentage.
select
    loan_id,
    interest_rate,
    'looks like a percentage: ' || cast(interest_rate as {{ dbt.type_string() }})
        || ' → ' || cast(cast(interest_rate / 100 as decimal(18,8)) as {{ dbt.type_string() }})
        || '? a mapping can scale it (divide = 100)' as reason
from {{ ref('loans') }}
where interest_rate > {{ var('max_interest_rate') }}

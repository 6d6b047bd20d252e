-- The data date (METRICS §4): the latest issue, payment, call or merchant-event date loaded,
-- and the first month of the portfolio (the earliest issue month of a non-cancelled loan).
with dates as (
    select max(issue_date) as d from {{ ref('loans') }}
    union all
    select max(paid_date) from {{ ref('payments') }}
    union all
    select max(called_date) from {{ ref('calls') }}
    union all
    select max(occurred_date) from {{ ref('merchant_events') }}
)

select
    (select max(d) from dates) as data_date,
    (select min(issue_date) from {{ ref('loans') }} where not is_cancelled) as first_issue_date

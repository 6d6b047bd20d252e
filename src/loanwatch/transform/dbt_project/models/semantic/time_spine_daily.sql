{{ config(materialized='table', schema='marts', database='published') }}
-- The day calendar of the semantic layer (MetricFlow's time spine, docs/architecture.md "Semantic
-- layer"): every day from the first month of the portfolio through the month of the last date a
-- figure can have (the data date, or the last instalment due date when that is later).
-- is_through_data_date: the day is on or before the data date; collection efficiency counts the
-- instalments due by then, as `report revenue` does (METRICS §5).
with bounds as (
    select
        cast(date_trunc('month', dates.first_issue_date) as date) as first_day,
        case when dues.last_due_date > dates.data_date then dues.last_due_date else dates.data_date end as last_date,
        dates.data_date
    from {{ ref('int_data_date') }} as dates
    cross join (select max(due_date) as last_due_date from {{ ref('fct_instalments') }}) as dues
),

days as (
    select {{ add_days('bounds.first_day', 's.k - 1') }} as date_day
    from bounds
    {{ series_join('cast(' ~ days_between('bounds.first_day', month_end('bounds.last_date')) ~ ' + 1 as integer)') }}
)

select
    days.date_day,
    days.date_day <= bounds.data_date as is_through_data_date
from days
cross join bounds

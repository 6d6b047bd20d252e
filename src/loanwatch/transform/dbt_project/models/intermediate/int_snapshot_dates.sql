-- The snapshot calendar (METRICS §4): every month from the first issue month through the month
-- of the data date; the snapshot is the month's last day, or the data date for its own month.
with bounds as (
    select * from {{ ref('int_data_date') }}
),

months as (
    {{ month_starts('(select first_issue_date from bounds)', '(select data_date from bounds)') }}
),

dated as (
    select
        {{ month_label('months.month_start') }} as month,
        months.month_start,
        case
            when {{ month_end('months.month_start') }} > bounds.data_date then bounds.data_date
            else {{ month_end('months.month_start') }}
        end as snapshot_date,
        {{ month_end('months.month_start') }} > bounds.data_date as is_as_of,
        bounds.data_date
    from months
    cross join bounds
)

select
    *,
    lag(snapshot_date) over (order by month_start) as previous_snapshot_date
from dated

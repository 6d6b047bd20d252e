-- The snapshot calendar and the data date, published for reports.
select * from {{ ref('int_snapshot_dates') }}

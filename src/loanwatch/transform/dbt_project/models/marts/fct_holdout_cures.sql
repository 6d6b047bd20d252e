{{ config(materialized='table') }}
-- The hold-out baseline of cure after contact (METRICS §6): for every day on which some overdue
-- loan was called (and that day + var('cure_window_days') is not after the data date), the loans of hold-out clients
-- (macros/delinquency.sql is_holdout) overdue at the end of that day, by DPD bucket, and how many
-- of them were current or closed that many days later. The hold-out group is compared as drawn, whether
-- or not a call reached it (intention to treat): fct_calls.is_holdout shows such calls.
-- The loan-days are in int_holdout_overdue_days (kept incrementally); this counts them.
with contact_days as (
    select distinct called_date as contact_date
    from {{ ref('fct_calls') }}
    where is_cured_7d is not null
)

select
    days.contact_date,
    buckets.bucket as dpd_bucket,
    count(*) as holdout_overdue,
    cast(sum(case when days.is_cured_7d then 1 else 0 end) as bigint) as holdout_cured
from {{ ref('int_holdout_overdue_days') }} as days
inner join contact_days on contact_days.contact_date = days.contact_date
inner join {{ ref('dpd_buckets') }} as buckets on days.dpd between buckets.min_dpd and buckets.max_dpd
group by days.contact_date, buckets.bucket

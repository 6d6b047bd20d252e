{{ config(severity='warn') }}
-- Freshness: the data date is older than var freshness_days (config [checks] freshness_days).
select data_date, current_date as checked_on
from {{ ref('int_data_date') }}
where data_date < {{ add_days('current_date', '-' ~ var('freshness_days')) }}

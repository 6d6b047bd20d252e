{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail',
          pre_hook="{{ incremental_hook('client_id', 'clients') }}") }}
-- The latest version of every client that is not deleted.
select *
from {{ ref('client_versions') }}
where is_current and {{ for_changed('client_id', 'clients') }}

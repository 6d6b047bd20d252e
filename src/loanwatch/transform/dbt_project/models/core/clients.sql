{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail',
          pre_hook="{{ incremental_hook('client_id', 'clients') }}") }}
-- The latest version of every client that is not deleted, and whether the client is in the contact
-- hold-out group (macros/delinquency.sql is_holdout) as this build's settings draw it.
select *, {{ is_holdout('client_id') }} as is_holdout
from {{ ref('client_versions') }}
where is_current and {{ for_changed('client_id', 'clients') }}

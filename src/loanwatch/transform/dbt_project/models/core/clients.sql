{% set recompute = recompute_set('clients') %}
{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail',
          pre_hook=recompute_hook(recompute)) }}
-- The latest version of every client that is not deleted, and whether the client is in the contact
-- hold-out group (macros/delinquency.sql is_holdout) as this build's settings draw it.
select *, {{ is_holdout('client_id') }} as is_holdout
from {{ ref('client_versions') }}
where is_current and {{ recomputed_keys(recompute, 'client_id') }}

-- Events appended by batch: a login never changes once loaded.
{% set recompute = recompute_set('new_batches') %}
{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail',
          pre_hook=recompute_hook(recompute)) }}
select * from {{ recomputed_rows(recompute, ref('stg_logins')) }} as logins

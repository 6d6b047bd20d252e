{% set recompute = recompute_set('clients') %}
{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail',
          pre_hook=recompute_hook(recompute)) }}
{{ versions(ref('stg_clients'), 'client_id', recomputed_keys(recompute, 'client_id')) }}

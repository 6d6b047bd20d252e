{% set recompute = recompute_set('loan_terms') %}
{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail',
          pre_hook=recompute_hook(recompute)) }}
{{ versions(ref('stg_loans'), 'loan_id', recomputed_keys(recompute, 'loan_id')) }}

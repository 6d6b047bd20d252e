{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail',
          pre_hook="{{ incremental_hook('loan_id', 'loan_terms') }}") }}
{{ versions(ref('stg_loans'), 'loan_id', for_changed('loan_id', 'loan_terms')) }}

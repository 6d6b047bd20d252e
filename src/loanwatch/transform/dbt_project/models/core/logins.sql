-- Events appended by batch: a login never changes once loaded.
{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail',
          pre_hook="{{ batch_incremental_hook() }}") }}
select * from {{ ref('stg_logins') }}
where {{ for_new_batches() }}

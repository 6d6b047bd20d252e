-- Events appended by batch: a ledger event never changes once loaded.
{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail',
          pre_hook="{{ batch_incremental_hook() }}") }}
select * from {{ ref('stg_merchant_events') }}
where {{ for_new_batches() }}

{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail',
          pre_hook="{{ incremental_hook('client_id', 'clients') }}") }}
{{ versions(ref('stg_clients'), 'client_id', for_changed('client_id', 'clients')) }}

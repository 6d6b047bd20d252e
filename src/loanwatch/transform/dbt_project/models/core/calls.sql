-- A view: events need no copy of their own.
{{ config(materialized='view') }}
select * from {{ ref('stg_calls') }}

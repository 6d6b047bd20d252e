select * from {{ ref('stg_calls') }}

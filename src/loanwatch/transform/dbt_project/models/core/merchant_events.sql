select * from {{ ref('stg_merchant_events') }}

with source as (
    select * from {{ source('raw', 'merchant_events') }}
),

renamed as (
    select
        -- ids
        event_id,
        merchant_id,
        -- attributes
        event_type,
        coalesce(currency, '{{ var("default_currency") | replace("'", "''") }}') as currency,
        -- amounts: inflow positive, outflow negative
        amount,
        {{ money("case when event_type in ('order_paid', 'payout_reversed') then amount else -amount end") }} as signed_amount,
        -- dates
        occurred_at,
        cast(occurred_at as date) as occurred_date,
        -- lineage
        batch_id,
        file_name,
        line_no
    from source
)

select * from renamed

with source as (
    select * from {{ source('raw', 'payments') }}
),

renamed as (
    select
        -- ids
        payment_id,
        loan_id,
        reverses as reversed_payment_id,
        -- amounts
        amount,
        -- dates: a payment's day is its UTC date (contract)
        paid_at,
        cast(paid_at as date) as paid_date,
        -- attributes
        coalesce(type, 'payment') as payment_type,
        channel,
        -- lineage
        batch_id,
        file_name,
        line_no
    from source
)

select * from renamed

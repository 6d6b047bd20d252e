with source as (
    select * from {{ source('raw', 'charges') }}
),

renamed as (
    select
        -- ids
        charge_id,
        loan_id,
        reverses as reversed_charge_id,
        -- attributes
        type as charge_type,
        instalment as instalment_number,
        -- amounts
        amount,
        -- dates: owed from charged_at; due with the instalment of due_date (default: its day)
        charged_at,
        coalesce(due_date, cast(charged_at as date)) as due_date,
        -- lineage
        batch_id,
        file_name,
        line_no
    from source
)

select * from renamed

with source as (
    select * from {{ source('raw', 'loan_schedules') }}
),

renamed as (
    select
        -- ids
        loan_id,
        updated_at,
        instalment_number as position,
        -- dates
        due_date,
        -- amounts
        principal as principal_amount,
        interest as interest_amount,
        coalesce(fee, 0) as fee_amount,
        coalesce(penalty, 0) as penalty_amount,
        -- lineage
        batch_id
    from source
)

select * from renamed

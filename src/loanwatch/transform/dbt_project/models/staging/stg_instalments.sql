with source as (
    select * from {{ source('raw', 'instalments') }}
),

renamed as (
    select
        -- ids
        loan_id,
        number as position,
        -- dates
        due_date,
        -- amounts
        principal as principal_amount,
        coalesce(interest, 0) as interest_amount,
        coalesce(fee, 0) as fee_amount,
        coalesce(penalty, 0) as penalty_amount,
        -- the schedule this record belongs to is in force from this date; null: from the issue date
        effective_from,
        -- lineage
        batch_id,
        file_name,
        line_no
    from source
)

select * from renamed

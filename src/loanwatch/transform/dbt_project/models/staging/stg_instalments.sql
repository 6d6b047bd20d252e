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
        -- lineage
        batch_id,
        file_name,
        line_no
    from source
)

select * from renamed

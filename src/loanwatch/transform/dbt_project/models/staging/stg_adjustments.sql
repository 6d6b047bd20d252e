with source as (
    select * from {{ source('raw', 'adjustments') }}
),

renamed as (
    select
        -- ids
        adjustment_id,
        loan_id,
        reverses as reversed_adjustment_id,
        -- attributes
        type as adjustment_type,
        -- the component a waiver forgives: interest, fee, penalty or principal
        case when type like 'waive_%' then substr(type, 7) end as component,
        instalment as instalment_number,
        -- amounts
        amount,
        -- dates
        adjusted_at,
        -- lineage
        batch_id,
        file_name,
        line_no
    from source
)

select * from renamed

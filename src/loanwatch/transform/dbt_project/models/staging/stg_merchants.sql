with source as (
    select * from {{ source('raw', 'merchants') }}
),

renamed as (
    select
        -- ids
        merchant_id,
        -- attributes
        name as merchant_name,
        category,
        size,
        region,
        -- versions
        updated_at,
        deleted as is_deleted,
        -- lineage
        batch_id,
        file_name,
        line_no
    from source
)

select * from renamed

with source as (
    select * from {{ source('raw', 'clients') }}
),

renamed as (
    select
        -- ids
        client_id,
        -- attributes
        name as client_name,
        email,
        phone,
        region,
        city,
        birth_date,
        gender,
        monthly_income as monthly_income_amount,
        preferred_channel,
        do_not_contact as is_do_not_contact,
        coalesce(timezone, '{{ var("default_timezone") | replace("'", "''") }}') as timezone,
        language,
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

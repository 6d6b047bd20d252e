with source as (
    select * from {{ source('raw', 'logins') }}
),

renamed as (
    select
        -- ids
        login_id,
        client_id,
        -- attributes
        lower(channel) as channel,
        -- dates
        logged_in_at,
        cast(logged_in_at as date) as logged_in_date,
        -- lineage
        batch_id,
        file_name,
        line_no
    from source
)

select * from renamed

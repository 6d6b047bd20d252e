with source as (
    select * from {{ source('raw', 'agents') }}
),

renamed as (
    select
        -- ids
        agent_id,
        -- attributes
        name as agent_name,
        team,
        level,
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

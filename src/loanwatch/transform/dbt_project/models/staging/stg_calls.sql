with source as (
    select * from {{ source('raw', 'calls') }}
),

renamed as (
    select
        -- ids
        call_id,
        client_id,
        loan_id,
        agent_id,
        -- attributes
        campaign,
        phone,
        outcome,
        talk_seconds,
        total_seconds,
        -- promise
        promised_amount,
        promised_date,
        -- dates
        called_at,
        cast(called_at as date) as called_date,
        -- lineage
        batch_id,
        file_name,
        line_no
    from source
)

select * from renamed

with source as (
    select * from {{ source('raw', 'loans') }}
),

renamed as (
    select
        -- ids
        loan_id,
        client_id,
        merchant_id,
        -- terms
        product,
        amount,
        coalesce(currency, '{{ var("default_currency") | replace("'", "''") }}') as currency,
        cast(coalesce(interest_rate, 0) as decimal(18,8)) as interest_rate,
        issue_date,
        term_months,
        coalesce(repayment, 'annuity') as repayment,
        schedule is not null as has_schedule,
        -- status as the source reports it
        lower(status) as source_status,
        -- a version that restructures the loan from this date (null: a correction)
        restructured_at,
        risk_score,
        fraud_score,
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

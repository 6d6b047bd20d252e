{% set recompute = recompute_set('loan_terms') %}
{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail',
          pre_hook=recompute_hook(recompute)) }}
-- One row per loan: the terms of its latest non-deleted version, and what its history says
-- about cancellation and write-off (METRICS §3).
with versions as (
    select * from {{ ref('loan_versions') }}
    where {{ recomputed_keys(recompute, 'loan_id') }}
),

latest as (
    select loan_id, is_deleted as latest_is_deleted, source_status as latest_status
    from versions
    where next_updated_at is null
),

terms as (
    select *
    from (
        select
            *,
            row_number() over (partition by loan_id order by updated_at desc) as recency
        from versions
        where not coalesce(is_deleted, false)
    ) as t
    where recency = 1
),

written_off as (
    select loan_id, min(cast(updated_at as date)) as written_off_date
    from versions
    where source_status = 'written_off'
    group by loan_id
),

final as (
    select
        -- ids
        terms.loan_id,
        terms.client_id,
        terms.merchant_id,
        -- terms
        terms.product,
        terms.amount,
        terms.currency,
        terms.interest_rate,
        terms.issue_date,
        terms.term_months,
        terms.repayment,
        terms.has_schedule,
        terms.updated_at as terms_updated_at,
        terms.risk_score,
        terms.fraud_score,
        -- status
        latest.latest_status as source_status,
        (coalesce(latest.latest_is_deleted, false) or coalesce(latest.latest_status, '') = 'cancelled') as is_cancelled,
        written_off.written_off_date,
        terms.version_number as version_count
    from terms
    inner join latest on latest.loan_id = terms.loan_id
    left join written_off on written_off.loan_id = terms.loan_id
)

select * from final

{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail',
          pre_hook="{{ loan_incremental_hook() }}") }}
-- depends_on: {{ ref('int_loans_changed') }}
-- Payment events with reversals applied: a reversal voids the payment it names, retroactively
-- (contract, METRICS §2). Reversal rows themselves are kept, flagged, for lineage.
with payments as (
    select * from {{ ref('stg_payments') }}
    where {{ for_changed_loans('loan_id') }}
),

reversals as (
    select reversed_payment_id, min(paid_at) as reversed_at
    from payments
    where payment_type = 'reversal'
    group by reversed_payment_id
),

final as (
    select
        payments.*,
        reversals.reversed_at,
        (reversals.reversed_payment_id is not null) as is_reversed,
        (payments.payment_type = 'payment' and reversals.reversed_payment_id is null) as is_effective
    from payments
    left join reversals on reversals.reversed_payment_id = payments.payment_id
)

select * from final

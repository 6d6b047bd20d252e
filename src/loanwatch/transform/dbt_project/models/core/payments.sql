{% set recompute = recompute_set('payments') %}
{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail',
          pre_hook=recompute_hook(recompute)) }}
-- depends_on: {{ ref('int_loans_changed') }} (built first: this model's checks read it)
-- Payment events with reversals applied: a reversal voids the payment it names, retroactively
-- (contract, METRICS §2), when that payment is of the same loan and is not itself a reversal;
-- any other reversal is not applied (warn_reversals_not_applied names it). Reversal rows
-- themselves are kept, flagged, for lineage.
-- Incremental builds recompute the payments of new batches and the payments they reverse.
with payments as (
    select * from {{ ref('stg_payments') }}
    where {{ recomputed_keys(recompute, 'payment_id') }}
),

reversals as (
    select reversed_payment_id, loan_id, min(paid_at) as reversed_at
    from {{ ref('stg_payments') }}
    where payment_type = 'reversal' and {{ recomputed_keys(recompute, 'reversed_payment_id') }}
    group by reversed_payment_id, loan_id
),

final as (
    select
        payments.*,
        reversals.reversed_at,
        (reversals.reversed_payment_id is not null) as is_reversed,
        (payments.payment_type = 'payment' and reversals.reversed_payment_id is null) as is_effective
    from payments
    left join reversals
        on reversals.reversed_payment_id = payments.payment_id
        and reversals.loan_id = payments.loan_id
        and payments.payment_type = 'payment'
)

select * from final

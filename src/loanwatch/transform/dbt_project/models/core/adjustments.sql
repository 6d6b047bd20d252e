{{ config(materialized='table') }}
-- Adjustments with reversals applied (contract v3, METRICS §2): a reversal voids the adjustment it names,
-- retroactively, when that adjustment is of the same loan and is not itself a reversal; any other
-- reversal is not applied (a data-quality check names it). Reversal rows are kept, flagged.
-- Rebuilt whole at every build: servicing events are a small table beside payments.
with adjustments as (
    select * from {{ ref('stg_adjustments') }}
),

reversals as (
    select reversed_adjustment_id, loan_id, min(adjusted_at) as reversed_at
    from adjustments
    where adjustment_type = 'reversal'
    group by reversed_adjustment_id, loan_id
)

select
    adjustments.*,
    reversals.reversed_at,
    (reversals.reversed_adjustment_id is not null) as is_reversed,
    (adjustments.adjustment_type <> 'reversal' and reversals.reversed_adjustment_id is null) as is_effective
from adjustments
left join reversals
    on reversals.reversed_adjustment_id = adjustments.adjustment_id
    and reversals.loan_id = adjustments.loan_id
    and adjustments.adjustment_type <> 'reversal'

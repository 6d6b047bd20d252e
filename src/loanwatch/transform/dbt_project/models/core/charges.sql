{{ config(materialized='table') }}
-- Charges with reversals applied (contract v3, METRICS §2): a reversal voids the charge it names,
-- retroactively, when that charge is of the same loan and is not itself a reversal; any other
-- reversal is not applied (a data-quality check names it). Reversal rows are kept, flagged.
-- Rebuilt whole at every build: servicing events are a small table beside payments.
with charges as (
    select * from {{ ref('stg_charges') }}
),

reversals as (
    select reversed_charge_id, loan_id, min(charged_at) as reversed_at
    from charges
    where charge_type = 'reversal'
    group by reversed_charge_id, loan_id
)

select
    charges.*,
    reversals.reversed_at,
    (reversals.reversed_charge_id is not null) as is_reversed,
    (charges.charge_type <> 'reversal' and reversals.reversed_charge_id is null) as is_effective
from charges
left join reversals
    on reversals.reversed_charge_id = charges.charge_id
    and reversals.loan_id = charges.loan_id
    and charges.charge_type <> 'reversal'

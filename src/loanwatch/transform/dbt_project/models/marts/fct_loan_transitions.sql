{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail',
          pre_hook=["{{ incremental_hook('loan_id', 'loans') }}",
                    "{{ incremental_delete('snapshot_date not in (select snapshot_date from ' ~ ref('int_snapshot_dates') ~ ')') }}"]) }}
-- depends_on: {{ ref('int_loans_changed') }}
-- Month-to-month transitions (METRICS §5, roll and cure rates): every loan active at a snapshot
-- S(m-1), with where it is at S(m): its bucket, or closed / written_off (fct_loan_snapshots keeps
-- the snapshot at which a loan left the book). rolled_principal_amount is what a roll rate counts
-- for the loan: its principal at S(m), or at S(m-1) when it left the book (it has none at S(m)).
-- A cure: a loan past due at S(m-1) (any bucket but current) that is current or closed at S(m).
-- Incremental builds recompute the changed loans' rows at every date, and every loan's rows at
-- the snapshot dates the table does not have yet (a new data date, a month end passed).
with dates as (
    select month, snapshot_date, previous_snapshot_date
    from {{ ref('int_snapshot_dates') }}
    where previous_snapshot_date is not null
),

snapshots as (
    select loan_id, snapshot_date, state, is_active, bucket, principal_outstanding_amount
    from {{ ref('fct_loan_snapshots') }}
),

moves as (
    select
        dates.month,
        dates.snapshot_date,
        before.loan_id,
        before.bucket as from_bucket,
        case when after.is_active then after.bucket else after.state end as to_bucket,
        before.principal_outstanding_amount as principal_before_amount,
        after.principal_outstanding_amount as principal_after_amount
    from dates
    inner join snapshots as before
        on before.snapshot_date = dates.previous_snapshot_date
        and before.is_active
    inner join snapshots as after
        on after.snapshot_date = dates.snapshot_date
        and after.loan_id = before.loan_id
    {%- if is_incremental() %}
    where {{ for_changed('before.loan_id') }}
        or dates.snapshot_date not in (select distinct snapshot_date from {{ this }})
    {%- endif %}
)

select
    month,
    snapshot_date,
    loan_id,
    from_bucket,
    to_bucket,
    principal_before_amount,
    principal_after_amount,
    case when to_bucket in ('closed', 'written_off') then principal_before_amount else principal_after_amount end
        as rolled_principal_amount,
    from_bucket <> 'current' and to_bucket in ('current', 'closed') as is_cure
from moves

{% set recompute = recompute_set('loan_days', day='snapshot_date', dates='int_snapshot_dates') %}
{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail',
          pre_hook=recompute_hook(recompute)) }}
-- depends_on: {{ ref('int_loans_changed') }}
-- Month-to-month transitions (METRICS §5, roll and cure rates): every loan active at a snapshot
-- S(m-1), with where it is at S(m): its bucket, or closed / written_off (fct_loan_snapshots keeps
-- the snapshot at which a loan left the book). rolled_principal_amount is what a roll rate counts
-- for the loan: its principal at S(m), or at S(m-1) when it left the book (it has none at S(m)).
-- A cure: a loan past due at S(m-1) (any bucket but current) that is current or closed at S(m).
-- Incremental builds recompute, like fct_loan_snapshots, a changed loan's rows from its
-- recompute_from day (all of them when that is null: the pre-hook deletes the same), and
-- add every loan's rows at the snapshot dates the table does not have yet (a new data date, a
-- month end passed).
with dates as (
    select month, snapshot_date, previous_snapshot_date
    from {{ ref('int_snapshot_dates') }}
    where previous_snapshot_date is not null
),

snapshots as (
    select loan_id, snapshot_date, state, is_active, bucket, principal_outstanding_amount
    from {{ ref('fct_loan_snapshots') }}
),

{#- (dates, rows at S(m)) pairs: on a full build every date and row; on an incremental one the
    dates the table lacks with every row, and the other dates with the changed loans' recomputed
    rows (none of those dates is new, so no pair is taken twice). -#}
{%- set parts = [('1 = 1', 'snapshots')] %}
{%- if is_incremental() %}
{%- set parts = [('snapshot_date not in (select distinct snapshot_date from ' ~ this ~ ')', 'snapshots'),
                 ('snapshot_date in (select distinct snapshot_date from ' ~ this ~ ')',
                  recomputed_rows(recompute, 'snapshots'))] %}
{%- endif %}
moves as (
    {%- for dates_condition, after_relation in parts %}
    {% if not loop.first %}union all{% endif %}
    select
        dates.month,
        dates.snapshot_date,
        before.loan_id,
        before.bucket as from_bucket,
        case when after.is_active then after.bucket else after.state end as to_bucket,
        before.principal_outstanding_amount as principal_before_amount,
        after.principal_outstanding_amount as principal_after_amount
    from (select * from dates where {{ dates_condition }}) as dates
    inner join {{ after_relation }} as after
        on after.snapshot_date = dates.snapshot_date
    inner join snapshots as before
        on before.snapshot_date = dates.previous_snapshot_date
        and before.loan_id = after.loan_id
        and before.is_active
    {%- endfor %}
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
    from_bucket <> 'current' and {{ is_cured('to_bucket') }} as is_cure
from moves

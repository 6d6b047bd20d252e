{{ config(severity='error') }}
-- DPD at a snapshot is at most the previous snapshot's DPD plus the days between, or back to 0;
-- unless, in between, a charge opened an instalment already due again, or a restructuring put
-- another schedule in force (METRICS §2): then DPD may jump.
with ordered as (
    select
        loan_id,
        snapshot_date,
        dpd,
        lag(dpd) over (partition by loan_id order by snapshot_date) as previous_dpd,
        lag(snapshot_date) over (partition by loan_id order by snapshot_date) as previous_date
    from {{ ref('fct_loan_snapshots') }}
    where is_active and {{ changed_snapshots_only('loan_id', 'snapshot_date') }}
)

select loan_id, snapshot_date, dpd, previous_dpd, previous_date
from ordered
where previous_date is not null
  and dpd > 0
  and dpd > previous_dpd + {{ days_between('previous_date', 'snapshot_date') }}
  and not exists (
      select 1 from {{ ref('int_servicing_events') }} as e
      where e.loan_id = ordered.loan_id and e.kind = 'charge'
          and e.event_date > ordered.previous_date and e.event_date <= ordered.snapshot_date)
  and not exists (
      select 1 from {{ ref('int_servicing_schedules') }} as s
      where s.loan_id = ordered.loan_id
          and s.regime_from > ordered.previous_date and s.regime_from <= ordered.snapshot_date)

-- One row per non-cancelled loan: when it was first more than 30, 60 and 90 days past due at a
-- snapshot (a month end, or the data date for its month) while active (the snapshot's is_par30/60/90
-- flags), the months on book then (vintages, METRICS §5), the most DPD any snapshot saw, and the default flag (written off, or
-- more than 90 days past due at a snapshot). Reports filter and count these rows.
with loans as (
    select loan_id, issue_date, written_off_date
    from {{ ref('loans') }}
    where not is_cancelled
),

reached as (
    select
        loan_id,
        max(dpd) as max_dpd,
        {%- for days in par_days() %}
        min(case when is_par{{ days }} then snapshot_date end) as first_dpd{{ days }}_date{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ ref('fct_loan_snapshots') }}
    where is_active
    group by loan_id
)

select
    loans.loan_id,
    {{ month_label('loans.issue_date') }} as cohort,
    coalesce(reached.max_dpd, 0) as max_dpd,
    {%- for days in par_days() %}
    reached.first_dpd{{ days }}_date,
    {%- endfor %}
    -- months on book at that snapshot: its month minus the issue month
    {%- for days in par_days() %}
    {{ month_number('reached.first_dpd' ~ days ~ '_date') }} - {{ month_number('loans.issue_date') }} as months_to_dpd{{ days }},
    {%- endfor %}
    (loans.written_off_date is not null or reached.first_dpd90_date is not null) as is_defaulted
from loans
left join reached on reached.loan_id = loans.loan_id

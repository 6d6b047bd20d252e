-- The provisions' transition counts and weights (METRICS §9): per complete month m, currency and
-- pair of transition states (transition_states), the loans active at S(m-1) in state i then and in
-- state j at S(m), and their principal outstanding at S(m-1) (the `balance` weight; `loans` is the
-- `count` weight). The report sums the months of its window and divides (reports/provisions.py):
-- the window, the weight and the as-of date are report-time choices.
-- An active loan's state is its bucket's (dpd_buckets.transition_state); a loan that left the
-- book went to default (written off) or closed: this is the one place the exits are mapped.
-- Only complete months: the data date's own month, when the data date is not its last day, is
-- left out (its S(m) is not a month end).
-- A group-by over fct_loan_transitions, rebuilt whole at every build (a table, not incremental).
with moves as (
    select
        transitions.month,
        transitions.snapshot_date,
        dates.previous_snapshot_date,
        loans.currency,
        from_bucket.transition_state as from_state,
        case transitions.to_bucket
            when 'written_off' then 'default'
            when 'closed' then 'closed'
            else to_bucket.transition_state
        end as to_state,
        transitions.principal_before_amount
    from {{ ref('fct_loan_transitions') }} as transitions
    inner join {{ ref('int_snapshot_dates') }} as dates
        on dates.snapshot_date = transitions.snapshot_date
        and not dates.is_as_of
    inner join {{ ref('dim_loans') }} as loans
        on loans.loan_id = transitions.loan_id
    inner join {{ ref('dpd_buckets') }} as from_bucket
        on from_bucket.bucket = transitions.from_bucket
    left join {{ ref('dpd_buckets') }} as to_bucket
        on to_bucket.bucket = transitions.to_bucket
)

select
    month,
    snapshot_date,
    previous_snapshot_date,
    currency,
    from_state,
    to_state,
    count(*) as loans,
    cast(sum(principal_before_amount) as decimal(38,2)) as weight_amount
from moves
group by month, snapshot_date, previous_snapshot_date, currency, from_state, to_state

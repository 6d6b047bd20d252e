{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail',
          pre_hook="{{ loan_incremental_hook() }}") }}
-- depends_on: {{ ref('int_loans_changed') }}
-- The state timeline of every non-cancelled loan (METRICS §3): one row per interval
-- [valid_from, valid_to) over which state, principal outstanding and past-due amount are
-- constant. Boundaries are the events that can change them: issue, payment days, paid-on days,
-- the day after each due date (an instalment is overdue at D when due_date < D), write-off.
-- Within an interval only DPD moves, linearly: DPD(D) = D - overdue_since_date.
-- The state at any date D is the row with valid_from <= D < valid_to.
with loans as (
    select * from {{ ref('loans') }} where not is_cancelled and {{ for_changed_loans('loan_id') }}
),

instalments as (
    select * from {{ ref('int_instalments_paid') }} where {{ for_changed_loans('loan_id') }}
),

events as (
    select loan_id, issue_date as event_date,
        cast(0 as decimal(18,2)) as paid_amount, cast(0 as decimal(18,2)) as principal_amount,
        cast(0 as decimal(18,2)) as interest_amount, 0 as paid_count, 0 as due_count
    from loans
    union all
    select loan_id, paid_date, amount, principal_amount, interest_amount, 0, 0
    from {{ ref('int_payments_allocated') }}
    where {{ for_changed_loans('loan_id') }}
    union all
    select loan_id, paid_on_date, 0, 0, 0, 1, 0
    from instalments where paid_on_date is not null
    union all
    select loan_id, {{ add_days('due_date', 1) }}, 0, 0, 0, 0, 1
    from instalments
    union all
    select loan_id, written_off_date, 0, 0, 0, 0, 0
    from loans where written_off_date is not null
),

daily as (
    select
        loan_id,
        event_date,
        sum(paid_amount) as paid_amount,
        sum(principal_amount) as principal_amount,
        sum(interest_amount) as interest_amount,
        sum(paid_count) as paid_count,
        sum(due_count) as due_count
    from events
    group by loan_id, event_date
),

running as (
    select
        loan_id,
        event_date as valid_from,
        lead(event_date) over (partition by loan_id order by event_date) as valid_to,
        sum(paid_amount) over w as cum_paid_amount,
        sum(principal_amount) over w as cum_principal_paid_amount,
        sum(interest_amount) over w as cum_interest_paid_amount,
        sum(paid_count) over w as paid_instalments,
        sum(due_count) over w as due_instalments
    from daily
    window w as (partition by loan_id order by event_date rows between unbounded preceding and current row)
),

joined as (
    select
        running.*,
        loans.amount,
        loans.issue_date,
        loans.written_off_date,
        first_unpaid.due_date as first_unpaid_due_date,
        coalesce(last_due.cum_due_amount, 0) as cum_due_past_amount
    from running
    inner join loans on loans.loan_id = running.loan_id
    left join instalments as first_unpaid
        on first_unpaid.loan_id = running.loan_id
        and first_unpaid.instalment_number = running.paid_instalments + 1
    left join instalments as last_due
        on last_due.loan_id = running.loan_id
        and last_due.instalment_number = running.due_instalments
),

counted as (
    select
        joined.*,
        counts.instalment_total
    from joined
    inner join (
        select loan_id, count(*) as instalment_total from instalments group by loan_id
    ) as counts on counts.loan_id = joined.loan_id
),

stated as (
    select
        *,
        case
            when valid_from < issue_date then 'not_issued'
            when written_off_date <= valid_from then 'written_off'
            when paid_instalments >= instalment_total then 'closed'
            when paid_instalments + 1 <= due_instalments then 'overdue'
            else 'current'
        end as state
    from counted
),

final as (
    select
        -- ids and interval
        loan_id,
        valid_from,
        coalesce(valid_to, cast('9999-12-31' as date)) as valid_to,
        -- state
        state,
        state in ('current', 'overdue') as is_active,
        case when state = 'overdue' then first_unpaid_due_date end as overdue_since_date,
        -- amounts (on-book balance: zero unless active)
        case when state in ('current', 'overdue') then amount - cum_principal_paid_amount else 0 end
            as principal_outstanding_amount,
        case when state in ('current', 'overdue') then greatest(cum_due_past_amount - cum_paid_amount, 0) else 0 end
            as past_due_amount,
        -- running totals
        cum_paid_amount,
        cum_principal_paid_amount,
        cum_interest_paid_amount,
        paid_instalments,
        due_instalments,
        instalment_total,
        -- when the loan left the book
        min(case when state = 'closed' then valid_from end) over (partition by loan_id) as closed_date,
        written_off_date
    from stated
)

select * from final

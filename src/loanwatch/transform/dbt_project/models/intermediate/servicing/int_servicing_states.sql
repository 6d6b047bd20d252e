{{ config(materialized='table') }}
-- depends_on: {{ ref('int_loans_changed') }}
-- The state timeline of the servicing loans (METRICS §2-3), in fct_loan_states' terms: one row per
-- interval [valid_from, valid_to) between the days on which something can change (issue, each
-- event's day, the day after each due date, a restructuring's date, write-off). At the end of day D
-- an instalment of the schedule in force on D is open when what its components still owe
-- (int_servicing_ledger, summed up to D) exceeds the tolerance; overdue when, besides, its due date
-- is before D. fct_loan_states adds these rows to the others.
with loans as (
    select l.loan_id, l.amount, l.issue_date, l.written_off_date
    from {{ ref('loans') }} as l
    inner join {{ ref('int_servicing_loans') }} as s on s.loan_id = l.loan_id
    where {{ servicing_recomputed('l.loan_id') }}
),

schedules as (
    select * from {{ ref('int_servicing_schedules') }}
),

instalments as (
    select s.regime_key, i.loan_id, i.instalment_number, i.due_date
    from {{ ref('int_instalments_scheduled') }} as i
    inner join schedules as s
        on s.loan_id = i.loan_id
        and {{ same_schedule('s', 'i') }}
),

ledger as (
    select * from {{ ref('int_servicing_ledger') }}
),

-- what each instalment of each schedule owes, from each day it changes to the next
instalment_days as (
    select
        regime_key, instalment_number, event_date,
        sum(amount) as amount,
        sum(case when component = 'principal' then amount else 0 end) as principal_amount,
        sum(case when component in ('fee', 'penalty') then amount else 0 end) as charges_amount
    from ledger
    group by regime_key, instalment_number, event_date
),

instalment_open as (
    select
        d.regime_key,
        d.instalment_number,
        i.due_date,
        d.event_date as valid_from,
        coalesce(lead(d.event_date) over (partition by d.regime_key, d.instalment_number order by d.event_date),
                 cast('9999-12-31' as date)) as valid_to,
        sum(d.amount) over w as open_amount,
        sum(d.principal_amount) over w as open_principal_amount,
        sum(d.charges_amount) over w as open_charges_amount
    from instalment_days as d
    inner join instalments as i on i.regime_key = d.regime_key and i.instalment_number = d.instalment_number
    window w as (partition by d.regime_key, d.instalment_number order by d.event_date rows between unbounded preceding and current row)
),

-- a payment's allocation is the one of the schedule in force on its day
ledger_in_force as (
    select ledger.*
    from ledger
    inner join schedules as s
        on s.regime_key = ledger.regime_key
        and ledger.event_date >= s.regime_from
        and ledger.event_date < s.regime_to
),

-- money by day: paid, and the principal and interest payments took (and the days a schedule
-- comes into force)
money_days as (
    select loan_id, issue_date as day, cast(0 as decimal(18,2)) as paid_amount,
        cast(0 as decimal(18,2)) as principal_amount, cast(0 as decimal(18,2)) as interest_amount
    from loans
    union all
    select loan_id, written_off_date, 0, 0, 0 from loans where written_off_date is not null
    union all
    select loan_id, regime_from, 0, 0, 0 from schedules where regime_from > cast('0001-01-01' as date)
    union all
    select loan_id, {{ add_days('due_date', 1) }}, 0, 0, 0 from instalments
    union all
    select loan_id, event_date, amount, 0, 0 from {{ ref('int_servicing_events') }} where kind = 'payment' and is_in_force
    union all
    select loan_id, event_date, 0,
        case when component = 'principal' and kind = 'payment' then -amount else 0 end,
        case when component = 'interest' and kind = 'payment' then -amount else 0 end
    from ledger_in_force
    where event_date > cast('0001-01-01' as date)
),

daily as (
    select loan_id, day, sum(paid_amount) as paid_amount, sum(principal_amount) as principal_amount,
        sum(interest_amount) as interest_amount
    from money_days
    group by loan_id, day
),

running as (
    select
        loan_id,
        day as valid_from,
        coalesce(lead(day) over (partition by loan_id order by day), cast('9999-12-31' as date)) as valid_to,
        {{ money_capped('sum(paid_amount) over w') }} as cum_paid_amount,
        {{ money('sum(principal_amount) over w') }} as cum_principal_paid_amount,
        {{ money('sum(interest_amount) over w') }} as cum_interest_paid_amount
    from daily
    window w as (partition by loan_id order by day rows between unbounded preceding and current row)
),

-- each interval of each instalment (instalment_open) over the days its schedule is in force, and
-- from when it is past due (the day after its due date)
instalments_in_force as (
    select
        s.loan_id,
        o.due_date,
        o.open_amount,
        o.open_principal_amount,
        o.open_charges_amount,
        case when o.open_amount > {{ var('tolerance') }} then 1 else 0 end as is_open,
        greatest(o.valid_from, s.regime_from) as from_day,
        least(o.valid_to, s.regime_to) as to_day,
        greatest(o.valid_from, s.regime_from, {{ add_days('o.due_date', 1) }}) as past_due_from_day
    from instalment_open as o
    inner join schedules as s on s.regime_key = o.regime_key
    where o.valid_from < s.regime_to
        and s.regime_from < o.valid_to
),

-- what each interval adds to the loan's figures from the day it starts, and takes away on the day
-- it ends: summed up to a day D, the figures of the instalments in force at D (set-based: no join
-- of every day with every instalment)
deltas as (
    select loan_id, from_day as day, open_principal_amount as principal_amount, is_open as open_count,
        1 - is_open as paid_count, cast(0 as decimal(18,2)) as past_due_amount,
        cast(0 as decimal(18,2)) as charges_past_due_amount, 0 as due_count
    from instalments_in_force
    union all
    select loan_id, to_day, -open_principal_amount, -is_open, is_open - 1, 0, 0, 0
    from instalments_in_force
    where to_day < cast('9999-12-31' as date)
    union all
    select loan_id, past_due_from_day, 0, 0, 0, open_amount, open_charges_amount, 1
    from instalments_in_force
    where past_due_from_day < to_day
    union all
    select loan_id, to_day, 0, 0, 0, -open_amount, -open_charges_amount, -1
    from instalments_in_force
    where past_due_from_day < to_day
        and to_day < cast('9999-12-31' as date)
    union all
    select loan_id, valid_from, 0, 0, 0, 0, 0, 0
    from running
),

day_totals as (
    select
        loan_id,
        day,
        sum(sum(principal_amount)) over w as principal_open_amount,
        sum(sum(open_count)) over w as open_instalments,
        sum(sum(paid_count)) over w as paid_instalments,
        sum(sum(past_due_amount)) over w as past_due_open_amount,
        sum(sum(charges_past_due_amount)) over w as charges_past_due_open_amount,
        sum(sum(due_count)) over w as due_instalments
    from deltas
    group by loan_id, day
    window w as (partition by loan_id order by day rows between unbounded preceding and current row)
),

-- the earliest due date among the instalments open and past due on a day (few intervals: an
-- instalment paid by its due date has none)
overdue as (
    select r.loan_id, r.valid_from, min(f.due_date) as overdue_since_date
    from running as r
    inner join instalments_in_force as f
        on f.loan_id = r.loan_id
        and f.past_due_from_day <= r.valid_from
        and r.valid_from < f.to_day
    where f.is_open = 1
        and f.past_due_from_day < f.to_day
    group by r.loan_id, r.valid_from
),

at_days as (
    select
        r.loan_id,
        r.valid_from,
        case when t.open_instalments > 0 then 1 else 0 end as open_instalments,
        o.overdue_since_date,
        {{ money('t.past_due_open_amount') }} as past_due_open_amount,
        {{ money('t.charges_past_due_open_amount') }} as charges_past_due_open_amount,
        {{ money('t.principal_open_amount') }} as principal_open_amount,
        cast(t.paid_instalments as integer) as paid_instalments,
        cast(t.due_instalments as integer) as due_instalments
    from running as r
    inner join day_totals as t on t.loan_id = r.loan_id and t.day = r.valid_from
    left join overdue as o on o.loan_id = r.loan_id and o.valid_from = r.valid_from
),

stated as (
    select
        r.*,
        a.paid_instalments,
        a.due_instalments,
        loans.amount,
        loans.written_off_date,
        a.overdue_since_date as first_unpaid_due_date,
        a.principal_open_amount,
        a.past_due_open_amount,
        a.charges_past_due_open_amount,
        case
            when r.valid_from < loans.issue_date then 'not_issued'
            when loans.written_off_date <= r.valid_from then 'written_off'
            when a.open_instalments = 0 then 'closed'
            when a.overdue_since_date is not null then 'overdue'
            else 'current'
        end as state
    from running as r
    inner join loans on loans.loan_id = r.loan_id
    inner join at_days as a on a.loan_id = r.loan_id and a.valid_from = r.valid_from
),

-- the day each run of closed days began (a charge after the last payment opens the loan again)
marked as (
    select
        *,
        case when state = 'closed' and coalesce(lag(state) over (partition by loan_id order by valid_from), '') <> 'closed'
             then valid_from end as closing_day
    from stated
)

select
    *,
    case when state = 'closed' then max(closing_day) over (
        partition by loan_id order by valid_from rows between unbounded preceding and current row) end as closed_date
from marked

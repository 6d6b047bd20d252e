{% set recompute = recompute_set('loan_days', day='valid_from') %}
{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail',
          pre_hook=[recompute_hook(recompute), "{{ hash_joins_as_written(true) }}"],
          post_hook=["{{ hash_joins_as_written(false) }}", "{{ close_kept_intervals() }}"]) }}
-- depends_on: {{ ref('int_loans_changed') }}
-- The state timeline of every non-cancelled loan (METRICS §3): one row per interval
-- [valid_from, valid_to) over which state, principal outstanding and past-due amount are
-- constant (the intervals are int_loan_events_running's). Within an interval only DPD moves,
-- linearly: DPD(D) = D - overdue_since_date. The state at any date D is the row with
-- valid_from <= D < valid_to.
-- A loan recomputed from a day (int_loans_changed.recompute_from) keeps its rows before that day:
-- its new rows continue the running totals of the last kept row, and close_kept_intervals() ends
-- that row where the new ones begin.
with
{%- if is_incremental() %}
-- the last kept row of each loan recomputed from a day (the pre-hook deleted the later ones)
kept as (
    select
        s.loan_id,
        s.cum_paid_amount,
        s.cum_principal_paid_amount,
        s.cum_interest_paid_amount,
        s.paid_instalments,
        s.due_instalments,
        s.closed_date
    from {{ this }} as s
    inner join {{ recompute_relation(recompute) }} as c
        on c.loan_id = s.loan_id
        and s.valid_to >= c.recompute_from
),
{%- endif %}

running as (
    select
        r.loan_id,
        r.valid_from,
        r.valid_to,
        {%- if is_incremental() %}
        {{ money_capped('coalesce(kept.cum_paid_amount, 0) + r.cum_paid_amount') }} as cum_paid_amount,
        {{ money('coalesce(kept.cum_principal_paid_amount, 0) + r.cum_principal_paid_amount') }} as cum_principal_paid_amount,
        {{ money('coalesce(kept.cum_interest_paid_amount, 0) + r.cum_interest_paid_amount') }} as cum_interest_paid_amount,
        cast(coalesce(kept.paid_instalments, 0) + r.paid_instalments as integer) as paid_instalments,
        cast(coalesce(kept.due_instalments, 0) + r.due_instalments as integer) as due_instalments,
        kept.closed_date as kept_closed_date
        {%- else %}
        r.cum_paid_amount,
        r.cum_principal_paid_amount,
        r.cum_interest_paid_amount,
        r.paid_instalments,
        r.due_instalments,
        cast(null as date) as kept_closed_date
        {%- endif %}
    from {{ ref('int_loan_events_running') }} as r
    {%- if is_incremental() %}
    left join kept on kept.loan_id = r.loan_id
    {%- endif %}
    where {{ recomputed_keys(recompute, 'r.loan_id') }}
),

loans as (
    select loan_id, amount, issue_date, written_off_date
    from {{ ref('loans') }}
    where not is_cancelled and {{ recomputed_keys(recompute, 'loan_id') }}
),

instalments as (
    select loan_id, instalment_number, due_date, cum_due_amount, instalment_count
    from {{ ref('fct_instalments') }}
    where {{ recomputed_keys(recompute, 'loan_id') }}
),

stated as (
    select
        running.*,
        loans.amount,
        loans.written_off_date,
        first_unpaid.due_date as first_unpaid_due_date,
        -- instalments are paid in due order: the principal not yet paid, and the shortfall of
        -- what was paid against what fell due before this day
        {{ money('loans.amount - running.cum_principal_paid_amount') }} as principal_open_amount,
        {{ money('greatest(coalesce(last_due.cum_due_amount, 0) - running.cum_paid_amount, 0)') }} as past_due_open_amount,
        cast(0 as decimal(18,2)) as charges_past_due_open_amount,
        cast(null as date) as given_closed_date,
        case
            when running.valid_from < loans.issue_date then 'not_issued'
            when loans.written_off_date <= running.valid_from then 'written_off'
            -- no unpaid instalment left: the last one is paid
            when first_unpaid.loan_id is null then 'closed'
            when running.paid_instalments + 1 <= running.due_instalments then 'overdue'
            else 'current'
        end as state
    from running
    inner join loans on loans.loan_id = running.loan_id
    left join instalments as first_unpaid
        on first_unpaid.loan_id = running.loan_id
        and first_unpaid.instalment_number = running.paid_instalments + 1
    left join instalments as last_due
        on last_due.loan_id = running.loan_id
        and last_due.instalment_number = running.due_instalments
    -- the loans with charges, waivers or fees in their schedule, allocated event by event
    union all
    select
        loan_id, valid_from, valid_to, cum_paid_amount, cum_principal_paid_amount, cum_interest_paid_amount,
        paid_instalments, due_instalments, cast(null as date), amount, written_off_date, first_unpaid_due_date,
        principal_open_amount, past_due_open_amount, charges_past_due_open_amount, closed_date, state
    from {{ ref('int_servicing_states') }}
    where {{ recomputed_keys(recompute, 'loan_id') }}
),

closed as (
    -- the first day in state closed: every instalment paid, issued, not yet written off (a kept
    -- row that already had it comes first)
    select loan_id, min(closed_date) as closed_date
    from (
        select loan_id, kept_closed_date as closed_date
        from running
        where kept_closed_date is not null
        union all
        select running.loan_id, running.valid_from
        from running
        inner join loans on loans.loan_id = running.loan_id
        inner join (
            select loan_id, max(instalment_count) as instalment_count from instalments group by loan_id
        ) as counts on counts.loan_id = running.loan_id
        where running.paid_instalments >= counts.instalment_count
            and running.valid_from >= loans.issue_date
            and (loans.written_off_date is null or running.valid_from < loans.written_off_date)
    ) as closing_days
    group by loan_id
)

{#- METRICS §3: a loan is active (on the book) when current or overdue; the reports read is_active #}
{%- set active = "stated.state in ('current', 'overdue')" %}
{#- METRICS §5: a loan defaults (NPL) when more than the last PAR threshold (90) days past due #}
{%- set npl_from = add_days(dpd_counted_from('stated.first_unpaid_due_date'), par_days() | last + 1) %}
select
    -- ids and interval
    stated.loan_id,
    stated.valid_from,
    stated.valid_to,
    -- state
    stated.state,
    {{ active }} as is_active,
    case when stated.state = 'overdue' then stated.first_unpaid_due_date end as overdue_since_date,
    -- DPD at a day D of the interval is D - dpd_counted_from_date (macros/delinquency.sql)
    case when stated.state = 'overdue' then {{ dpd_counted_from('stated.first_unpaid_due_date') }} end as dpd_counted_from_date,
    -- the day within the interval on which DPD passes 90 (a default, METRICS §5 NPL), if it does
    case
        when stated.state = 'overdue'
            and {{ npl_from }} >= stated.valid_from
            and {{ npl_from }} < stated.valid_to
            then {{ npl_from }}
    end as dpd_over_90_date,
    -- amounts (on-book balance: zero unless active)
    {{ money("case when " ~ active ~ " then stated.principal_open_amount else 0 end") }} as principal_outstanding_amount,
    {{ money("case when " ~ active ~ " then stated.past_due_open_amount else 0 end") }} as past_due_amount,
    -- the fee and penalty part of past_due_amount (contract v3 charges)
    {{ money("case when " ~ active ~ " then stated.charges_past_due_open_amount else 0 end") }} as charges_past_due_amount,
    -- running totals
    stated.cum_paid_amount,
    stated.cum_principal_paid_amount,
    stated.cum_interest_paid_amount,
    stated.paid_instalments,
    stated.due_instalments,
    -- when the loan left the book: the day it closed, on its rows from that day on
    coalesce(stated.given_closed_date, case when stated.valid_from >= closed.closed_date then closed.closed_date end) as closed_date,
    stated.written_off_date
from stated
left join closed on closed.loan_id = stated.loan_id

{% set recompute = recompute_set('calls') %}
{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail',
          pre_hook=recompute_hook(recompute)) }}
-- depends_on: {{ ref('int_loans_changed') }}
-- One row per call: the call centre's figures (METRICS §7) and the contact figures (METRICS §6).
-- Calls are grouped by the UTC date of called_at (called_month and called_week are its labels,
-- YYYY-MM and ISO YYYY-Www, for the reports).
-- * is_right_party: the outcome reached the client (macros/delinquency.sql is_right_party).
-- * is_connected: talk_seconds at least var('connect_min_talk_seconds'); without talk time, a
--   right-party outcome.
-- * is_conversation: any talk time, or a right-party outcome (the contact plan's "no calls within
--   7 days after a conversation").
-- * first_login_at, login_channel: for a connected call, the client's first login within
--   var('login_window_hours') after it. A login may follow several calls: each of them counts it.
-- * agent_name, agent_team, agent_level: the agent's version current at the call (a call older
--   than the agent's first record takes that first record: agent files are often exports of today).
-- * loan_state_at_call, dpd_at_call: the loan's state and DPD at the end of the call's day; for a
--   call about no loan, dpd_at_call is the client's highest DPD that day.
-- * is_promise_kept: a promise_to_pay whose promised_amount (any amount when absent) is paid on
--   the loan (the client's loans, when the call names none) from the call until the end of
--   promised_date + var('promise_grace_days') days (the call's day when no date was promised);
--   null while that is still ahead of the data date and not yet paid.
-- * is_cured_7d: for a loan overdue on the call's day, whether it is current or closed
--   var('cure_window_days') days later (7 unless configured: the column keeps its name); null when
--   the call is about no overdue loan, or that day is after the data date.
-- * is_holdout: the client is in the contact hold-out group (macros/delinquency.sql is_holdout).
-- Incremental: a build recomputes the calls whose row can have changed (set calls,
-- macros/incremental/call.sql): new calls, calls of changed loans, of clients with new logins, of
-- agents with new versions, and calls still undecided at the last good build's data date.
with calls as {{ materialized_if_incremental() }} (
    select
        call_id,
        client_id,
        loan_id,
        agent_id,
        campaign,
        called_at,
        called_date,
        {{ month_label('called_date') }} as called_month,
        {{ week_label('called_date') }} as called_week,
        talk_seconds,
        total_seconds,
        outcome,
        promised_amount,
        promised_date,
        {{ is_right_party('outcome') }} as is_right_party,
        coalesce(outcome = 'promise_to_pay', false) as is_promise,
        case
            when talk_seconds is not null then talk_seconds >= {{ var('connect_min_talk_seconds') }}
            else {{ is_right_party('outcome') }}
        end as is_connected,
        coalesce(talk_seconds > 0, false) or {{ is_right_party('outcome') }} as is_conversation
    from {{ recomputed_rows(recompute, ref('calls')) }} as recomputed
),

data_date as (
    select data_date from {{ ref('int_data_date') }}
),

logins_after as (
    select
        calls.call_id,
        logins.logged_in_at,
        logins.channel,
        row_number() over (
            partition by calls.call_id order by logins.logged_in_at, logins.channel, logins.login_id
        ) as nth
    from calls
    inner join {{ ref('logins') }} as logins
        on logins.client_id = calls.client_id
        and logins.logged_in_at >= calls.called_at
        and logins.logged_in_at < calls.called_at + interval '{{ var("login_window_hours") | int }}' hour
    where calls.is_connected
),

agent_at_call as (
    select
        calls.call_id,
        agents.agent_name,
        agents.team as agent_team,
        agents.level as agent_level
    from calls
    inner join {{ ref('agent_versions') }} as agents
        on agents.agent_id = calls.agent_id
        and (agents.valid_from <= calls.called_at or agents.version_number = 1)
        and (agents.valid_to is null or calls.called_at < agents.valid_to)
),

loan_at_call as (
    select
        calls.call_id,
        states.state as loan_state_at_call,
        {{ dpd_at('calls.called_date', 'states.dpd_counted_from_date') }} as dpd_at_call,
        case
            when states.state = 'overdue' and {{ add_days('calls.called_date', var('cure_window_days') | int) }} <= data_date.data_date
                then {{ is_cured('later.state') }}
        end as is_cured_7d
    from calls
    cross join data_date
    inner join {{ ref('fct_loan_states') }} as states
        on states.loan_id = calls.loan_id
        and states.valid_from <= calls.called_date
        and calls.called_date < states.valid_to
    left join {{ ref('fct_loan_states') }} as later
        on states.state = 'overdue'
        and later.loan_id = calls.loan_id
        and later.valid_from <= {{ add_days('calls.called_date', var('cure_window_days') | int) }}
        and {{ add_days('calls.called_date', var('cure_window_days') | int) }} < later.valid_to
),

client_at_call as (
    -- a call about no loan: the client's highest DPD that day
    select
        calls.call_id,
        max({{ dpd_at('calls.called_date', 'states.dpd_counted_from_date') }}) as dpd_at_call
    from calls
    inner join {{ ref('dim_loans') }} as loans on loans.client_id = calls.client_id
    inner join {{ ref('fct_loan_states') }} as states
        on states.loan_id = loans.loan_id
        and states.valid_from <= calls.called_date
        and calls.called_date < states.valid_to
    where calls.loan_id is null
    group by calls.call_id
),

promises as (
    select
        call_id,
        client_id,
        loan_id,
        called_at,
        promised_amount,
        {{ add_days('coalesce(promised_date, called_date)', (var('promise_grace_days') | int) + 1) }} as kept_before
    from calls
    where is_promise
),

promise_loans as (
    -- the promised loan, or every loan of the client when the call names none
    select call_id, loan_id from promises where loan_id is not null
    union all
    select promises.call_id, loans.loan_id
    from promises
    inner join {{ ref('dim_loans') }} as loans on loans.client_id = promises.client_id
    where promises.loan_id is null
),

paid_after_promise as (
    -- effective payments on those loans from the call to the deadline
    select
        promises.call_id,
        sum(payments.amount) as paid_amount
    from promises
    inner join promise_loans on promise_loans.call_id = promises.call_id
    inner join {{ ref('payments') }} as payments
        on payments.loan_id = promise_loans.loan_id
        and payments.is_effective
        and payments.paid_at >= promises.called_at
        and payments.paid_date < promises.kept_before
    group by promises.call_id
),

promise_outcomes as (
    select
        promises.call_id,
        case
            when paid.paid_amount >= coalesce(promises.promised_amount, 0) and paid.paid_amount > 0 then true
            when promises.kept_before <= {{ add_days('data_date.data_date', 1) }} then false
        end as is_promise_kept
    from promises
    cross join data_date
    left join paid_after_promise as paid on paid.call_id = promises.call_id
)

select
    calls.*,
    logins_after.logged_in_at as first_login_at,
    logins_after.channel as login_channel,
    agent_at_call.agent_name,
    agent_at_call.agent_team,
    agent_at_call.agent_level,
    loan_at_call.loan_state_at_call,
    coalesce(loan_at_call.dpd_at_call, client_at_call.dpd_at_call) as dpd_at_call,
    promise_outcomes.is_promise_kept,
    loan_at_call.is_cured_7d,
    {{ is_holdout('calls.client_id') }} as is_holdout
from calls
left join logins_after
    on logins_after.call_id = calls.call_id and logins_after.nth = 1
left join agent_at_call on agent_at_call.call_id = calls.call_id
left join loan_at_call on loan_at_call.call_id = calls.call_id
left join client_at_call on client_at_call.call_id = calls.call_id
left join promise_outcomes on promise_outcomes.call_id = calls.call_id

{{ config(materialized='table') }}
-- One row per call (METRICS §7): whether it connected (talk_seconds at least
-- var('connect_min_talk_seconds'); without talk time, a right-party outcome, METRICS §6), and for
-- a connected call the client's first login within var('login_window_hours') after it, with its
-- channel. A login may follow several calls: each of them counts it. Calls are grouped by the
-- UTC date of called_at.
with calls as (
    select
        call_id,
        client_id,
        loan_id,
        agent_id,
        campaign,
        called_at,
        called_date,
        talk_seconds,
        total_seconds,
        outcome,
        case
            when talk_seconds is not null then talk_seconds >= {{ var('connect_min_talk_seconds') }}
            else coalesce(outcome in ('promise_to_pay', 'refused', 'callback', 'paid', 'dispute'), false)
        end as is_connected
    from {{ ref('calls') }}
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
)

select
    calls.*,
    logins_after.logged_in_at as first_login_at,
    logins_after.channel as login_channel
from calls
left join logins_after
    on logins_after.call_id = calls.call_id and logins_after.nth = 1

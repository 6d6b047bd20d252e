{#
  Sets at call grain. The cure window is var('cure_window_days'): a loan overdue on a call's day
  is cured when it is current or closed that many days later.
#}

{#
  Set calls (fct_calls): the calls whose row can differ from the last good build's. A call's row
  reads its loan's states and payments, the client's logins and loans, the agent's versions and
  the data date, so on an incremental build these are recomputed:
    - calls of batches after the last good build;
    - calls about a loan of int_loans_changed (new versions, payments, reversals) that read it from
      its recompute_from day on (their day or the cure window later, or a promise's deadline, on
      or after it), and such calls about no loan of a client with such a loan;
    - calls of a client up to the login window before its first new login; calls of an agent with
      new versions;
    - calls still undecided at the last good build's data date: called within the cure window of
      it, or promises whose deadline had not passed.
  A changed setting (the connect threshold, the login window, the hold-out) changes the project
  hash: the build is a full one.
#}
{% macro calls_recomputed() -%}
{{ return([{'select': recomputed_calls(), 'keys': ['call_id']}]) }}
{%- endmacro %}

{% macro recomputed_calls() -%}
{%- set since = since_batch() -%}
select call_id from {{ ref('calls') }} where batch_id > {{ since }}
union
select k.call_id
from {{ ref('calls') }} as k
inner join {{ ref('int_loans_changed') }} as changed on changed.loan_id = k.loan_id
where {{ call_reads_loan_from('k', 'changed.recompute_from') }}
union
select k.call_id
from {{ ref('calls') }} as k
inner join {{ ref('dim_loans') }} as loans on loans.client_id = k.client_id
inner join {{ ref('int_loans_changed') }} as changed on changed.loan_id = loans.loan_id
where k.loan_id is null and {{ call_reads_loan_from('k', 'changed.recompute_from') }}
union
select k.call_id
from {{ ref('calls') }} as k
inner join (
    select client_id, min(logged_in_at) as first_new_login_at
    from {{ ref('logins') }}
    where batch_id > {{ since }}
    group by client_id
) as g
    on g.client_id = k.client_id
    and k.called_at > g.first_new_login_at - interval '{{ var("login_window_hours") | int }}' hour
union
select k.call_id
from {{ ref('calls') }} as k
inner join (select distinct agent_id from {{ source('raw', 'agents') }} where batch_id > {{ since }}) as a
    on a.agent_id = k.agent_id
union
select k.call_id
from {{ ref('calls') }} as k
cross join (select {{ last_good_data_date() }} as d) as previous
where {{ add_days('k.called_date', var('cure_window_days') | int) }} > previous.d
    or (k.outcome = 'promise_to_pay' and {{ add_days('coalesce(k.promised_date, k.called_date)', var('promise_grace_days') | int) }} >= previous.d)
{%- endmacro %}

{#- Whether a call can read a loan whose states and payments change from `from_date` on (all of
    them when null): its state at the call's day, the cure window later, or a payment before a
    promise's deadline. -#}
{% macro call_reads_loan_from(call, from_date) -%}
({{ from_date }} is null
    or {{ add_days(call ~ '.called_date', var('cure_window_days') | int) }} >= {{ from_date }}
    or ({{ call }}.outcome = 'promise_to_pay'
        and {{ add_days('coalesce(' ~ call ~ '.promised_date, ' ~ call ~ '.called_date)', var('promise_grace_days') | int) }} >= {{ from_date }}))
{%- endmacro %}

{#
  Set holdout_days (int_holdout_overdue_days, the hold-out's overdue loan-days on call days): its
  row of a loan and a day reads the loan's states on that day and the cure window later, the
  day's calls and the data date. On an incremental build it recomputes
    - every loan's rows on a new day: a day of a call in a new batch, or a day after the last
      good build's data date less the window (decidable only now);
    - the rows of a loan of int_loans_changed whose day plus the window is on or after its
      recompute_from day (all of them when that is null).
  holdout_first_new_day() is the earliest new day.
#}
{% macro holdout_days_recomputed() -%}
{%- set window = var('cure_window_days') | int -%}
{{ return([
    {'where': '{row}.contact_date > ' ~ add_days(last_good_data_date(), -window) ~ '
        or {row}.contact_date in (' ~ holdout_new_calls_days() ~ ')'},
    {'select': loans_changed(), 'keys': ['loan_id'], 'from': 'recompute_from', 'day_offset': window},
]) }}
{%- endmacro %}

{% macro holdout_new_calls_days() -%}
select distinct called_date from {{ ref('calls') }} where batch_id > {{ since_batch() }}
{%- endmacro %}

{% macro holdout_first_new_day() -%}
(select least(
    {{ add_days(last_good_data_date(), -(var('cure_window_days') | int)) }},
    coalesce((select min(called_date) from {{ ref('calls') }} where batch_id > {{ since_batch() }}), cast('9999-12-31' as date))))
{%- endmacro %}

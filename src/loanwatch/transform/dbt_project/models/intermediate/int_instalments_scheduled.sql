{% set recompute = recompute_set('loan_terms') %}
{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail',
          pre_hook=recompute_hook(recompute)) }}
-- depends_on: {{ ref('int_loans_changed') }} (built first: this model's checks read it)
-- Every instalment of every loan (METRICS §1), with the cumulative amounts the allocation and
-- the state timeline are computed from. Amounts are computed in integer cents so that rounding
-- is exactly half-up on every engine.
-- A restructured loan (contract v3) has several schedules, each in force from its effective_from
-- (null: the schedule the loan was issued with), each computed from the terms in force on that
-- date (int_schedule_terms).
{%- set first_day = "cast('0001-01-01' as date)" %}
with regimes as (
    select * from {{ ref('int_schedule_terms') }}
),

-- instalment records: those of the latest effective_from on or before the schedule's start
records_in_force as (
    select
        r.loan_id,
        r.effective_from,
        coalesce(
            max(case when coalesce(i.effective_from, {{ first_day }}) <= coalesce(r.effective_from, {{ first_day }})
                     then coalesce(i.effective_from, {{ first_day }}) end),
            min(coalesce(i.effective_from, {{ first_day }}))
        ) as records_from
    from regimes as r
    inner join {{ ref('stg_instalments') }} as i on i.loan_id = r.loan_id
    where not r.has_schedule and r.repayment = 'schedule'
    group by r.loan_id, r.effective_from
),

-- An explicit schedule: the `schedule` array of the loan's current version, or else, for a loan
-- whose repayment is `schedule`, its instalment records (contract v2), whenever they arrived.
given_instalments as (
    select s.loan_id, r.effective_from, s.position, s.due_date, s.principal_amount, s.interest_amount,
        coalesce(s.fee_amount, 0) as fee_amount, coalesce(s.penalty_amount, 0) as penalty_amount
    from {{ ref('stg_loan_schedules') }} as s
    inner join regimes as r
        on r.loan_id = s.loan_id
        and r.terms_updated_at = s.updated_at
    where r.has_schedule
    union all
    select i.loan_id, r.effective_from, i.position, i.due_date, i.principal_amount, i.interest_amount,
        coalesce(i.fee_amount, 0), coalesce(i.penalty_amount, 0)
    from {{ ref('stg_instalments') }} as i
    inner join regimes as r on r.loan_id = i.loan_id
    inner join records_in_force as f
        on f.loan_id = r.loan_id
        and {{ same_schedule('f', 'r') }}
        and f.records_from = coalesce(i.effective_from, {{ first_day }})
    where not r.has_schedule and r.repayment = 'schedule'
),

explicit as (
    select
        loan_id,
        effective_from,
        cast(row_number() over (partition by loan_id, effective_from order by due_date, position) as bigint) as instalment_number,
        due_date,
        principal_amount,
        interest_amount,
        fee_amount,
        penalty_amount
    from given_instalments
),

-- a generated schedule is computed under one key per schedule: the loan's id for the schedule it
-- was issued with, the id and the date for a later one
regime_keys as (
    select
        loan_id,
        effective_from,
        case when effective_from is null then loan_id
             else loan_id || ' from ' || cast(effective_from as {{ dbt.type_string() }}) end as regime_key
    from regimes
    where not has_schedule and term_months is not null
),

generated_terms as (
    select
        k.regime_key as loan_id,
        r.issue_date,
        r.term_months as n,
        r.repayment,
        r.interest_rate,
        cast(cast(r.amount as decimal(38,2)) * 100 as bigint) as amount_cents,
        cast(cast(r.interest_rate as decimal(38,8)) * 100000000 as bigint) as rate_e8
    from regimes as r
    inner join regime_keys as k
        on k.loan_id = r.loan_id
        and {{ same_schedule('k', 'r') }}
),

interest_free as (
    -- principal_k = round(amount / n, 2) for k < n; the last takes the remainder
    select
        t.loan_id,
        s.k as instalment_number,
        {{ add_months('t.issue_date', 's.k') }} as due_date,
        case
            when s.k < t.n then {{ round_half_up_div('t.amount_cents', 't.n') }}
            else t.amount_cents - (t.n - 1) * {{ round_half_up_div('t.amount_cents', 't.n') }}
        end as principal_cents,
        0 as interest_cents
    from generated_terms as t
    {{ series_join('t.n') }}
    where t.repayment = 'annuity' and t.rate_e8 = 0
),

with_interest as (
    {{ annuity_instalments("(select * from generated_terms where repayment = 'annuity' and rate_e8 > 0)") }}
),

bullet as (
    select
        loan_id,
        1 as instalment_number,
        {{ add_months('issue_date', 'n') }} as due_date,
        amount_cents as principal_cents,
        {{ round_half_up_div(big_int('amount_cents') ~ ' * rate_e8 * n', '1200000000') }} as interest_cents
    from generated_terms
    where repayment = 'bullet'
),

generated as (
    select loan_id, instalment_number, due_date, principal_cents, interest_cents from interest_free
    union all
    select loan_id, instalment_number, due_date, principal_cents, interest_cents from with_interest
    union all
    select loan_id, instalment_number, due_date, principal_cents, interest_cents from bullet
),

instalments as (
    select
        k.loan_id,
        k.effective_from,
        g.instalment_number,
        g.due_date,
        {{ cents_to_money('g.principal_cents') }} as principal_amount,
        {{ cents_to_money('g.interest_cents') }} as interest_amount,
        cast(0 as decimal(18,2)) as fee_amount,
        cast(0 as decimal(18,2)) as penalty_amount
    from generated as g
    inner join regime_keys as k on k.regime_key = g.loan_id
    union all
    select loan_id, effective_from, instalment_number, due_date, principal_amount, interest_amount, fee_amount, penalty_amount
    from explicit
),

cumulative as (
    select
        loan_id,
        -- the schedule is in force from this date (null: from the issue date)
        effective_from,
        instalment_number,
        due_date,
        principal_amount,
        {{ money('interest_amount') }} as interest_amount,
        -- the fees and penalties of an explicit schedule (contract v3; 0 on a generated one)
        {{ money('fee_amount') }} as fee_amount,
        {{ money('penalty_amount') }} as penalty_amount,
        -- one digit wider than money: an instalment's principal and interest may pass 10^16 together
        cast(principal_amount + interest_amount + fee_amount + penalty_amount as decimal(19,2)) as due_amount,
        {{ money('sum(principal_amount + interest_amount + fee_amount + penalty_amount) over w') }} as cum_due_amount,
        {{ money('(sum(principal_amount) over w) - principal_amount') }} as cum_principal_before_amount,
        count(*) over (partition by loan_id, effective_from) as instalment_count
    from instalments
    window w as (partition by loan_id, effective_from order by instalment_number rows between unbounded preceding and current row)
)

select
    *,
    {{ money('cum_due_amount - due_amount') }} as cum_due_before_amount,
    instalment_number = instalment_count as is_last
from cumulative

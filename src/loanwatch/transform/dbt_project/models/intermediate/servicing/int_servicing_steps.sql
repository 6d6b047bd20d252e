{{ config(materialized='table', pre_hook="{{ servicing_stages_planned() }}") }}
{#- How many steps (charges and waivers) the loan with the most has: the SQL below has one stage per
    step. Known only when the model runs (0 when dbt parses). #}
{%- set steps = servicing_step_count() %}
{#- Where the engine keeps a query's intermediate result once (materialized CTEs: DuckDB,
    PostgreSQL), each stage computes only the schedules that have that step, and a schedule leaves
    the chain after its last step (its columns of later stages null); Spark, which would compute a
    stage read twice twice over, runs every row through every stage. #}
{%- set split = servicing_stages_split() %}
-- METRICS §2, event by event, for the servicing loans' schedules (regime_key,
-- int_servicing_schedules): what each instalment's components owe after every step. One row per
-- (schedule, instalment, component): penalty, fee, interest, principal,
-- at position `pos` in the order payments fill them (due date, number, then [warehouse]
-- allocation_order), and one `credit` row per schedule (money paid beyond everything owed).
-- Stage s applies step s (int_servicing_events): a charge adds to its instalment's fee or penalty;
-- a waiver takes what it forgives from the open amounts of its component, in due-date order (only
-- its instalment's, where it names one), never more than is open. Then the credit and the
-- payments of step s fill the open amounts in `pos` order; what is left is credit again.
-- Columns m<s>, b<s>, w<s> keep, for each stage s, the open amount after the step (before its
-- payments), the open amount of the positions before it (where the step's payments reach it) and
-- what the step's waiver took: int_servicing_ledger turns them into each event's amounts. After a
-- schedule's last step they are null (DuckDB, PostgreSQL) or carry it on unchanged (Spark).
-- A plain chain of stages, each reading the one before once, so every engine plans it as one
-- query (Spark's recursive queries cannot hold a window function).
with schedules as (
    select regime_key, loan_id, effective_from from {{ ref('int_servicing_schedules') }}
),

components as (
    {%- for component in allocation_components() %}
    select '{{ component }}' as component, {{ loop.index }} as component_rank{{ ' union all' if not loop.last }}
    {%- endfor %}
),

slots as (
    select
        s.regime_key,
        i.loan_id,
        i.instalment_number,
        i.due_date,
        c.component,
        c.component_rank,
        false as is_credit,
        {{ money("case c.component when 'principal' then i.principal_amount when 'interest' then i.interest_amount
                  when 'fee' then i.fee_amount else i.penalty_amount end") }} as amount
    from {{ ref('int_instalments_scheduled') }} as i
    inner join schedules as s
        on s.loan_id = i.loan_id
        and {{ same_schedule('s', 'i') }}
    cross join components as c
    union all
    select regime_key, loan_id, cast(null as integer), cast(null as date), 'credit', 9, true, cast(0 as decimal(18,2))
    from schedules
),

positioned as (
    select
        regime_key, loan_id, instalment_number, due_date, component, is_credit, amount,
        cast(row_number() over (partition by regime_key order by is_credit, due_date, instalment_number, component_rank) as integer) as pos
    from slots
),

first_paid as (
    select regime_key, max(step_paid_amount) as paid_amount
    from {{ ref('int_servicing_events') }}
    where step = 0
    group by regime_key
),

s0_m as (
    select
        p.*,
        p.amount as m0,
        {{ money('coalesce(sum(case when not p.is_credit then p.amount end) over before_pos, 0)') }} as b0,
        cast(0 as decimal(18,2)) as w0,
        sum(case when p.is_credit then 0 else p.amount end) over (partition by p.regime_key) as total_open,
        coalesce(f.paid_amount, 0) as paid_amount
    from positioned as p
    left join first_paid as f on f.regime_key = p.regime_key
    window before_pos as (partition by p.regime_key order by p.pos rows between unbounded preceding and 1 preceding)
),

{%- set kept = ['regime_key', 'loan_id', 'instalment_number', 'due_date', 'component', 'is_credit', 'pos'] %}
{%- set history = ['m0', 'b0', 'w0'] %}
{%- set finished = [] %}  {#- (stage, how many history columns its finished rows have) #}
s0 as {{ 'materialized' if split }} (
    select
        {{ (kept + history) | join(', ') }},
        {{ money("case when is_credit then greatest(paid_amount - total_open, 0)
                  else m0 - least(greatest(paid_amount - b0, 0), m0) end") }} as open_amount
    from s0_m
){{ ',' if steps > 0 }}
{%- for s in range(1, steps + 1) %}

s{{ s }}_j as (
    select
        {% for c in kept + history %}prev.{{ c }}, {% endfor %}
        coalesce(b.amount, 0) as step_amount,
        coalesce(b.step_paid_amount, 0) as paid_amount,
        {{ money("prev.open_amount + case when b.kind = 'charge' and not prev.is_credit
                  and prev.instalment_number = b.instalment_number and prev.component = b.component
                  then b.amount else 0 end") }} as open_1,
        coalesce(b.kind = 'waiver' and not prev.is_credit and prev.component = b.component
                 and (b.instalment_number is null or prev.instalment_number = b.instalment_number), false) as is_waived
    from s{{ s - 1 }} as prev
    {{ 'inner' if split else 'left' }} join {{ ref('int_servicing_events') }} as b
        on b.regime_key = prev.regime_key and b.step = {{ s }} and b.kind <> 'payment'
),

s{{ s }}_w as (
    select
        *,
        {{ money("case when is_waived then least(greatest(step_amount - coalesce(sum(case when is_waived then open_1 end) over (
                      partition by regime_key order by pos rows between unbounded preceding and 1 preceding), 0), 0), open_1)
                  else 0 end") }} as w{{ s }}
    from s{{ s }}_j
),

s{{ s }}_m as (
    select
        *,
        {{ money('open_1 - w' ~ s) }} as m{{ s }},
        {{ money('coalesce(sum(case when not is_credit then open_1 - w' ~ s ~ ' end) over (
                  partition by regime_key order by pos rows between unbounded preceding and 1 preceding), 0)') }} as b{{ s }},
        sum(case when is_credit then open_1 else 0 end) over (partition by regime_key) as credit_amount,
        sum(case when is_credit then 0 else open_1 - w{{ s }} end) over (partition by regime_key) as total_open
    from s{{ s }}_w
),
{%- if split %}

-- the schedules whose last step was s - 1: finished, they go to the result as they are (no later
-- stage reads them; their columns of stage s on are null: no event of theirs is in those stages)
s{{ s }}_kept as (
    select {{ (kept + history) | join(', ') }}, open_amount
    from s{{ s - 1 }} as prev
    where not exists (
        select 1 from {{ ref('int_servicing_events') }} as b
        where b.regime_key = prev.regime_key and b.step = {{ s }} and b.kind <> 'payment')
),
{%- do finished.append((s, history | length)) %}
{%- endif %}
{%- do history.extend(['m' ~ s, 'b' ~ s, 'w' ~ s]) %}

s{{ s }} as {{ 'materialized' if split }} (
    select
        {{ (kept + history) | join(', ') }},
        {{ money("case when is_credit then greatest(credit_amount + paid_amount - total_open, 0)
                  else m" ~ s ~ " - least(greatest(credit_amount + paid_amount - b" ~ s ~ ", 0), m" ~ s ~ ") end") }} as open_amount
    from s{{ s }}_m
){{ ',' if not loop.last }}
{%- endfor %}

select {{ (kept + history) | join(', ') }}, open_amount from s{{ steps }}
{%- for s, n in finished %}
union all
select
    {{ (kept + history[:n]) | join(', ') }},
    {%- for c in history[n:] %} cast(null as decimal(18,2)) as {{ c }},{% endfor %}
    open_amount
from s{{ s }}_kept
{%- endfor %}

{#
  Instalments of annuity loans with interest (METRICS §1), from a relation with columns
  loan_id, issue_date, n, amount_cents, rate_e8 (annual rate x 1e8).
  A = round(amount r / (1 - (1 + r)^-n), 2), r = rate / 12 (in cents, in double precision);
  interest_k = round(balance_{k-1} r, 2); principal_k = A - interest_k, the last takes the balance.
  The balance recurrence rounds at every step, so it is a recursion over k, not a closed form:
  `annuity_steps` gives each instalment's balance before it (a recursive CTE; on Spark a fold),
  the rest is the same on every engine.
#}
{% macro annuity_instalments(terms) %}
with {{ adapter.dispatch('annuity_steps', 'loanwatch')(terms) }}

select
    loan_id,
    k as instalment_number,
    {{ add_months('issue_date', 'k') }} as due_date,
    case
        when k < n then payment_cents - {{ round_half_up_div(big_int('balance_before_cents') ~ ' * rate_e8', '1200000000') }}
        else balance_before_cents
    end as principal_cents,
    {{ round_half_up_div(big_int('balance_before_cents') ~ ' * rate_e8', '1200000000') }} as interest_cents
from steps
{% endmacro %}

{% macro annuity_terms(terms) %}
    select
        loan_id,
        issue_date,
        n,
        amount_cents,
        rate_e8,
        -- the payment in cents, rounded half-up; a real power needs floating point, and a
        -- double holds it to about 1e-16 of its value (tests/reference.py does the same)
        cast(floor(
            {{ to_double('amount_cents') }} * ({{ to_double('rate_e8') }} / 1200000000.0)
            / (1 - power(1 + {{ to_double('rate_e8') }} / 1200000000.0, -n)) + 0.5
        ) as bigint) as payment_cents
    from {{ terms }} as annuity_terms
{% endmacro %}

{# The CTEs `terms` and `steps` (loan_id, issue_date, n, rate_e8, payment_cents, k,
   balance_before_cents): a recursive CTE, one step per month of the longest term. #}
{% macro default__annuity_steps(terms) %}
recursive terms as ({{ annuity_terms(terms) }}),

steps as (
    select
        loan_id, issue_date, n, rate_e8, payment_cents,
        1 as k,
        amount_cents as balance_before_cents
    from terms
    union all
    select
        loan_id, issue_date, n, rate_e8, payment_cents,
        k + 1,
        balance_before_cents - (payment_cents - {{ round_half_up_div(big_int('balance_before_cents') ~ ' * rate_e8', '1200000000') }})
    from steps
    where k < n
)
{% endmacro %}

{# Spark runs a recursive CTE as one job per level and stops at 100 levels
   (`spark.sql.cteRecursionLevelLimit`; a term may be 600 months): each loan's balances are one
   fold (`aggregate`) over its instalments instead, the same arithmetic step by step, then
   exploded. #}
{% macro spark__annuity_steps(terms) %}
terms as ({{ annuity_terms(terms) }}),

balances as (
    select
        loan_id, issue_date, n, rate_e8, payment_cents,
        aggregate(
            filter(sequence(1, n), j -> j > 1),
            array(amount_cents),
            (acc, j) -> concat(acc, array(
                element_at(acc, -1)
                - (payment_cents - {{ round_half_up_div(big_int('element_at(acc, -1)') ~ ' * rate_e8', '1200000000') }})))
        ) as balances
    from terms
),

steps as (
    select loan_id, issue_date, n, rate_e8, payment_cents, b.pos + 1 as k, b.balance_before_cents
    from balances
    lateral view posexplode(balances) b as pos, balance_before_cents
)
{% endmacro %}

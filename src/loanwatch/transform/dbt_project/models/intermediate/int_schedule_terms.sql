{% set recompute = recompute_set('loan_terms') %}
-- The schedules of each loan and the terms each is computed from (METRICS §1-2): one schedule per
-- start date, the loan's issue (effective_from null) and each restructuring date of its versions
-- (restructured_at; a later version without one corrects the version before) and each
-- effective_from of its instalment records, with the terms in force on that date. A loan that was
-- never restructured has one, from the terms of its latest version. Rebuilt by every build: on an
-- incremental build, only the loans int_instalments_scheduled recomputes.
-- A model of its own, not a CTE there: Spark plans a CTE again at every place it is read, and
-- int_instalments_scheduled reads these rows in six (on 2,000 clients, one model took 15 s warm,
-- the two 4 s: docs/engines.md).
{%- set first_day = "cast('0001-01-01' as date)" %}
with loans as (
    select * from {{ ref('loans') }}
    where {{ recomputed_keys(recompute, 'loan_id') }}
),

restructured as (
    select
        v.loan_id, v.updated_at as terms_updated_at, v.amount, v.issue_date, v.term_months, v.repayment,
        v.interest_rate, v.has_schedule,
        max(v.restructured_at) over (
            partition by v.loan_id order by v.updated_at rows between unbounded preceding and current row
        ) as terms_from
    from {{ ref('loan_versions') }} as v
    where {{ recomputed_keys(recompute, 'v.loan_id') }}
        and not coalesce(v.is_deleted, false)
        and v.loan_id in (select loan_id from {{ ref('loan_versions') }} where restructured_at is not null)
),

-- the terms of each loan from each date: the latest version with that restructuring date
terms as (
    select loan_id, cast(null as date) as terms_from, terms_updated_at, amount, issue_date, term_months, repayment,
        interest_rate, has_schedule
    from loans
    where loan_id not in (select loan_id from restructured)
    union all
    select loan_id, terms_from, terms_updated_at, amount, issue_date, term_months, repayment, interest_rate, has_schedule
    from (
        select *, row_number() over (partition by loan_id, terms_from order by terms_updated_at desc) as recency
        from restructured
    ) as latest
    where recency = 1
),

starts as (
    select loan_id, terms_from as effective_from from terms
    union
    select i.loan_id, i.effective_from
    from {{ ref('stg_instalments') }} as i
    inner join loans on loans.loan_id = i.loan_id
),

-- every schedule's start with the terms in force then (the latest on or before it; for a start
-- before every restructuring date, the earliest)
regimes as (
    select *
    from (
        select
            s.loan_id,
            s.effective_from,
            t.terms_updated_at, t.amount, t.issue_date, t.term_months, t.repayment, t.interest_rate, t.has_schedule,
            row_number() over (
                partition by s.loan_id, s.effective_from
                order by
                    case when coalesce(t.terms_from, {{ first_day }}) <= coalesce(s.effective_from, {{ first_day }})
                         then coalesce(t.terms_from, {{ first_day }}) end desc nulls last,
                    coalesce(t.terms_from, {{ first_day }})
            ) as pick
        from starts as s
        inner join terms as t on t.loan_id = s.loan_id
    ) as picked
    where pick = 1
)

select loan_id, effective_from, terms_updated_at, amount, issue_date, term_months, repayment, interest_rate, has_schedule
from regimes

{{ config(severity='warn') }}
-- Instalment records (contract v2) that do not make a schedule: records of a loan that also has a
-- `schedule` array or whose repayment is not `schedule` (not used), a loan with repayment
-- `schedule` and no schedule at all yet, and records whose principals do not sum to the loan's
-- amount (within 0.01 x instalments). Records arrive separately from their loan, so this warns
-- rather than blocks: the build publishes, and the loan's schedule is what has arrived.
-- (the records of the schedule the loan was issued with: later ones, by effective_from, are a
-- restructuring's, warn_restructured_schedules'; so are those of a loan with a version that
-- restructures it: its latest terms are not those it was issued with)
with records as (
    select i.loan_id, count(*) as instalments, sum(i.principal_amount) as principal_total
    from {{ ref('stg_instalments') }} as i
    inner join (
        select loan_id, min(coalesce(effective_from, cast('0001-01-01' as date))) as effective_from
        from {{ ref('stg_instalments') }}
        group by loan_id
    ) as first_schedule
        on first_schedule.loan_id = i.loan_id
        and first_schedule.effective_from = coalesce(i.effective_from, cast('0001-01-01' as date))
    group by i.loan_id
)

select
    loans.loan_id,
    records.instalments,
    records.principal_total,
    loans.amount,
    case
        when records.loan_id is null then 'repayment is schedule but no schedule or instalment records have arrived'
        when loans.has_schedule then 'has a schedule array and instalment records: the array is used'
        when loans.repayment <> 'schedule' then 'instalment records for a loan whose repayment is ' || loans.repayment || ': not used'
        else 'instalment principals sum to ' || cast(records.principal_total as {{ dbt.type_string() }}) || ', not the amount ' || cast(loans.amount as {{ dbt.type_string() }})
    end as reason
from {{ ref('loans') }} as loans
left join records on records.loan_id = loans.loan_id
where not loans.is_cancelled
    and loans.loan_id not in (select loan_id from {{ ref('loan_versions') }} where restructured_at is not null)
    and (
        (records.loan_id is null and loans.repayment = 'schedule' and not loans.has_schedule)
        or (records.loan_id is not null and (loans.has_schedule or loans.repayment <> 'schedule'))
        or (records.loan_id is not null and not loans.has_schedule and loans.repayment = 'schedule'
            and abs(records.principal_total - loans.amount) > 0.01 * records.instalments)
    )

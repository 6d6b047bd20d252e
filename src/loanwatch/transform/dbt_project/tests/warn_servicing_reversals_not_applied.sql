{{ config(severity='warn') }}
-- Reversals of charges and adjustments that are not applied (contract v3): the record they name is
-- of another loan, or is itself a reversal. (One that names a record not seen:
-- reversals_of_unknown_charges, reversals_of_unknown_adjustments.)
{%- for entity, key in [('charges', 'charge'), ('adjustments', 'adjustment')] %}
select
    r.{{ key }}_id as event_id,
    '{{ entity }}' as entity,
    r.loan_id,
    r.reversed_{{ key }}_id as reverses,
    case
        when target.{{ key }}_type = 'reversal' then 'names a reversal'
        else 'names a record of loan ' || target.loan_id
    end as reason
from {{ ref('stg_' ~ entity) }} as r
inner join {{ ref('stg_' ~ entity) }} as target on target.{{ key }}_id = r.reversed_{{ key }}_id
where r.{{ key }}_type = 'reversal'
    and (target.loan_id <> r.loan_id or target.{{ key }}_type = 'reversal')
{{ 'union all' if not loop.last }}
{%- endfor %}

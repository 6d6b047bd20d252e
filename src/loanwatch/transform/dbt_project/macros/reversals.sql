{#
  Contract v3 reversals of charges and adjustments (as of payments, whose model also recomputes
  incrementally): a record of the same entity with `type: reversal` and `reverses` voids the
  record it names, retroactively, when that one is of the same loan and is not itself a reversal;
  any other reversal is not applied (warn_servicing_reversals_not_applied names it). Every row is
  kept, reversals flagged: reversed_at, is_reversed, and is_effective (counts in METRICS §2).
  `name`: the record's name (charge, adjustment): its columns are <name>_id, <name>_type,
  reversed_<name>_id; `at`: its time column.
#}
{% macro reversals_applied(relation, name, at) %}
with records as (
    select * from {{ relation }}
),

reversals as (
    select reversed_{{ name }}_id, loan_id, min({{ at }}) as reversed_at
    from records
    where {{ name }}_type = 'reversal'
    group by reversed_{{ name }}_id, loan_id
)

select
    records.*,
    reversals.reversed_at,
    (reversals.reversed_{{ name }}_id is not null) as is_reversed,
    (records.{{ name }}_type <> 'reversal' and reversals.reversed_{{ name }}_id is null) as is_effective
from records
left join reversals
    on reversals.reversed_{{ name }}_id = records.{{ name }}_id
    and reversals.loan_id = records.loan_id
    and records.{{ name }}_type <> 'reversal'
{% endmacro %}

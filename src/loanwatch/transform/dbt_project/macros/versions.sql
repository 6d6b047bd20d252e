{#
  Every version of a versioned entity, in updated_at order, whatever batch it arrived in:
  valid_from = its updated_at, valid_to = the next version's updated_at, is_current for the
  latest one unless that one is a deletion (a deletion ends the entity's current version).
  `where` picks the entities to compute (all of each one's versions).
#}
{% macro versions(relation, key, where='1 = 1') %}
with ordered as (
    select
        *,
        cast(row_number() over (partition by {{ key }} order by updated_at) as bigint) as version_number,
        lead(updated_at) over (partition by {{ key }} order by updated_at) as next_updated_at
    from {{ relation }}
    where {{ where }}
)

select
    *,
    updated_at as valid_from,
    next_updated_at as valid_to,
    (next_updated_at is null and not coalesce(is_deleted, false)) as is_current
from ordered
{% endmacro %}

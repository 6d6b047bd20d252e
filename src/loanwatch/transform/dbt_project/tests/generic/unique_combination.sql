{#
  The combination of columns is unique (the dbt_utils test, written here because `dbt deps`
  cannot reach the package hub).
#}
{% test unique_combination(model, columns) %}
select {{ columns | join(', ') }}, count(*) as n
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}

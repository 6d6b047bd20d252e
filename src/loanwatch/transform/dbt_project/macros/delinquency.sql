{# DPD at a date within a state interval (METRICS §3); 0 unless overdue. #}
{% macro dpd_at(date_expr, overdue_since_expr) -%}
coalesce({{ days_between(overdue_since_expr, date_expr) }}{% if var('dpd_counts_due_day') %} + 1{% endif %}, 0)
{%- endmacro %}

{#
  DPD (METRICS §3), in one place. A loan overdue since day S has, at day D, DPD = D - C where C,
  the day DPD counts from, is S; with the option dpd_counts_due_day (the Frappe convention) the
  due day itself counts, and C is the day before S. fct_loan_states carries C for every overdue
  interval (dpd_counted_from_date), so a DPD at any date is that subtraction, here and in the
  reports alike.
#}
{% macro dpd_counted_from(overdue_since_expr) -%}
{%- if var('dpd_counts_due_day') -%}{{ add_days(overdue_since_expr, -1) }}{%- else -%}{{ overdue_since_expr }}{%- endif -%}
{%- endmacro %}

{# DPD at a date within a state interval; 0 unless overdue. #}
{% macro dpd_at(date_expr, dpd_counted_from_expr) -%}
coalesce({{ days_between(dpd_counted_from_expr, date_expr) }}, 0)
{%- endmacro %}

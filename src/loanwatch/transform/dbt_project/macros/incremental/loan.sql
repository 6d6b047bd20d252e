{#
  Sets at loan and payment grain whose rows are recomputed whole (the sets of loans recomputed
  from a day are in loan_day.sql).
#}

{#- The loans with new versions, schedules or instalment records: what their terms and
    instalments are computed from. -#}
{% macro new_loan_terms() -%}
{%- set since = since_batch() -%}
select loan_id from {{ source('raw', 'loans') }} where batch_id > {{ since }}
union
select loan_id from {{ source('raw', 'loan_schedules') }} where batch_id > {{ since }}
union
select loan_id from {{ source('raw', 'instalments') }} where batch_id > {{ since }}
{%- endmacro %}

{#- Set loan_terms (loan_versions, loans, int_instalments_scheduled): those loans. -#}
{% macro loan_terms_recomputed() -%}
{{ return([{'select': new_loan_terms(), 'keys': ['loan_id']}]) }}
{%- endmacro %}

{#- Set loan_dimensions (dim_loans): a loan's row changes with its terms, its client's or its
    merchant's latest version. -#}
{% macro loan_dimensions_recomputed() -%}
{{ return(loan_terms_recomputed() + clients_recomputed() + merchants_recomputed()) }}
{%- endmacro %}

{#- Set payments (payments): the payments of new batches, and the payments they reverse. -#}
{% macro payments_recomputed() -%}
{%- set since = since_batch() -%}
{{ return([{'select': 'select payment_id from ' ~ source('raw', 'payments') ~ ' where batch_id > ' ~ since ~ '
union
select reverses from ' ~ source('raw', 'payments') ~ ' where batch_id > ' ~ since ~ ' and reverses is not null',
    'keys': ['payment_id']}]) }}
{%- endmacro %}

{#- Part of set loan_dimensions (dim_loans): the merchants with new versions. -#}
{% macro merchants_recomputed() -%}
{{ return([{'select': 'select merchant_id from ' ~ source('raw', 'merchants') ~ ' where batch_id > ' ~ since_batch(),
            'keys': ['merchant_id']}]) }}
{%- endmacro %}

{#
  Set merchant_days (fct_merchant_balances, the merchant ledger): the (merchant, currency) pairs
  with events in batches after the last good build, each from the earliest day those events fall
  on. A late event for an earlier day changes that day's running balance and every later one; no
  other merchant's rows change.
#}
{% macro merchant_days_recomputed() -%}
{{ return([{'select': 'select merchant_id, currency, min(occurred_date) as recompute_from
from ' ~ ref('merchant_events') ~ '
where batch_id > ' ~ since_batch() ~ '
group by merchant_id, currency',
    'keys': ['merchant_id', 'currency'], 'from': 'recompute_from'}]) }}
{%- endmacro %}

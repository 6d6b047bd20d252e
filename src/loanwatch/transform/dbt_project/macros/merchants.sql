{#
  The merchant ledger's incremental recompute (fct_merchant_balances): the (merchant, currency)
  pairs with events in batches after the last good build, each from the earliest day those
  events fall on. On a full build: every pair, from its first day.
#}
{% macro merchant_days_recomputed() -%}
select merchant_id, currency, min(occurred_date) as from_date
from {{ ref('merchant_events') }}
{%- if is_incremental() %}
where batch_id > {{ since_batch() }}
{%- endif %}
group by merchant_id, currency
{%- endmacro %}

{#- The pre-hook: delete the recomputed pairs' rows from their first recomputed day on. -#}
{% macro delete_recomputed_merchant_days() -%}
{% if is_incremental() -%}
{{ return(adapter.dispatch('delete_recomputed_merchant_days', 'loanwatch')()) }}
{%- endif %}
{%- endmacro %}
{% macro default__delete_recomputed_merchant_days() -%}
delete from {{ this }} as t
using ({{ merchant_days_recomputed() }}) as r
where r.merchant_id = t.merchant_id and r.currency = t.currency and t.balance_date >= r.from_date
{%- endmacro %}
{#- Spark SQL has no DELETE ... USING: a subquery names the rows. -#}
{% macro spark__delete_recomputed_merchant_days() -%}
{{ spark__delete_rows('exists (
    select 1 from (' ~ merchant_days_recomputed() ~ ') as r
    where r.merchant_id = t.merchant_id and r.currency = t.currency and t.balance_date >= r.from_date)') }}
{%- endmacro %}

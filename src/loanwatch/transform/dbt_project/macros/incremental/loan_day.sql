{#
  Sets at loan and day grain. int_loans_changed holds the loans whose inputs arrived after the
  last good build, and for a loan whose new inputs are only payments later than all its earlier
  ones, recompute_from: the day of the first new payment. Nothing a loan's day-grain rows say
  before that day can change (METRICS §2-3 depend only on earlier events).
#}

{% macro loans_changed() -%}
select loan_id, recompute_from from {{ ref('int_loans_changed') }}
{%- endmacro %}

{#- Set loan_days (fct_payment_allocations by paid_date, int_loan_days by event_date,
    fct_loan_states by valid_from, fct_loan_snapshots and fct_loan_transitions by snapshot_date):
    a changed loan's rows from its recompute_from day on, all of them when that is null. -#}
{% macro loan_days_recomputed() -%}
{{ return([{'select': loans_changed(), 'keys': ['loan_id'], 'from': 'recompute_from',
            'keys_select': 'select loan_id from ' ~ ref('int_loans_changed')}]) }}
{%- endmacro %}

{#
  Set loan_instalments (fct_instalments): the changed loans' instalments that the build's new
  inputs can change. A loan recomputed whole (recompute_from null) has all its instalments
  rewritten. A loan recomputed from a day has the same terms as before and new payments only after
  all its earlier ones (amounts > 0), so its cumulative paid amount only grows: from
  paid_before_amount (its payments before that day, all of which it had) to paid_total_amount (all
  its payments now). Its instalment keeps its row when
    - it was wholly allocated before that day (cum_due_amount <= paid_before_amount): the same
      paid-on date, earlier than the day, and its whole due amount allocated, then and now; or
    - even the new total leaves it untouched (paid_total_amount <= cum_due_before_amount and
      paid_total_amount < cum_due_amount - tolerance): nothing allocated and not paid, then and now.
  Typically that leaves the one or two instalments the new payments reach.
#}
{% macro loan_instalments_recomputed() -%}
{{ return([{'select': instalment_paid_totals(), 'keys': ['loan_id'], 'from': 'recompute_from',
            'match': 'not ' ~ instalment_row_kept('{row}', 's'),
            'keys_select': 'select loan_id from ' ~ ref('int_loans_changed')}]) }}
{%- endmacro %}

{% macro instalment_paid_totals() -%}
select
    c.loan_id,
    c.recompute_from,
    coalesce(max(case when p.paid_date < c.recompute_from then p.cum_paid_after_amount end), 0) as paid_before_amount,
    coalesce(max(p.cum_paid_after_amount), 0) as paid_total_amount
from {{ ref('int_loans_changed') }} as c
left join {{ ref('fct_payment_allocations') }} as p on p.loan_id = c.loan_id
group by c.loan_id, c.recompute_from
{%- endmacro %}

{% macro instalment_row_kept(instalment, totals) -%}
({{ totals }}.recompute_from is not null
    and ({{ instalment }}.cum_due_amount <= {{ totals }}.paid_before_amount
        or ({{ totals }}.paid_total_amount <= {{ instalment }}.cum_due_before_amount
            and {{ totals }}.paid_total_amount < {{ instalment }}.cum_due_amount - {{ var('tolerance') }})))
{%- endmacro %}

{#- fct_loan_states' post-hook: the kept row of a loan recomputed from a day ran until its next
    event; it now ends where the loan's new rows begin (the first new payment's day), and the day
    it would have passed 90 DPD is in it only if before that. -#}
{% macro close_kept_intervals() -%}
{% if is_incremental() -%}
{{ return(adapter.dispatch('close_kept_intervals', 'loanwatch')()) }}
{%- endif %}
{%- endmacro %}
{% macro default__close_kept_intervals() -%}
update {{ this }} as s
set valid_to = c.recompute_from,
    dpd_over_90_date = case when s.dpd_over_90_date < c.recompute_from then s.dpd_over_90_date end
from ({{ loans_changed() }}) as c
where c.loan_id = s.loan_id
    and s.valid_from < c.recompute_from
    and s.valid_to > c.recompute_from
{%- endmacro %}
{#- PostgreSQL: the same, and where the build keeps its changes (macros/incremental/recompute.sql),
    the rows as they were among those it removed, as they are now among those it added. This runs
    after the project's post-hook keep_added_rows (dbt runs a model's own hooks last), so the rows
    it updates are not in __added yet; run before it, they would be there twice. -#}
{% macro postgres__close_kept_intervals() -%}
{%- set update = default__close_kept_intervals() -%}
{%- if not keeps_changes() -%}{{ return(update) }}{%- endif -%}
insert into {{ changes_relation('removed') }}
select s.*
from {{ this }} as s
inner join ({{ loans_changed() }}) as c on c.loan_id = s.loan_id
where s.valid_from < c.recompute_from
    and s.valid_to > c.recompute_from;
with updated as ({{ update }}
returning s.*)
insert into {{ changes_relation('added') }} select * from updated
{%- endmacro %}
{#- Spark: the same change, as a rewrite of the table. -#}
{% macro spark__close_kept_intervals() -%}
{%- set changed = "c.loan_id is not null" -%}
{%- set columns = [] -%}
{%- for column in adapter.get_columns_in_relation(this) -%}
{%- if column.name == 'valid_to' -%}
{%- do columns.append('case when ' ~ changed ~ ' then c.recompute_from else s.valid_to end as valid_to') -%}
{%- elif column.name == 'dpd_over_90_date' -%}
{%- do columns.append('case when not (' ~ changed ~ ') or s.dpd_over_90_date < c.recompute_from then s.dpd_over_90_date end as dpd_over_90_date') -%}
{%- else -%}
{%- do columns.append('s.' ~ adapter.quote(column.name)) -%}
{%- endif -%}
{%- endfor -%}
{{ spark_rewrite('select ' ~ columns | join(', ') ~ ' from ' ~ this ~ ' as s left join (' ~ loans_changed() ~ ') as c
    on c.loan_id = s.loan_id and s.valid_from < c.recompute_from and s.valid_to > c.recompute_from') }}
{%- endmacro %}

{#
  Every engine difference of the project lives here, behind adapter.dispatch:
  default__ is standard SQL (PostgreSQL runs it), duckdb__ and spark__ override where needed.
#}

{# Integer division of non-negative integers, rounding down. #}
{% macro int_div(num, den) -%}{{ return(adapter.dispatch('int_div', 'loanwatch')(num, den)) }}{%- endmacro %}
{% macro default__int_div(num, den) -%}div(({{ num }})::numeric, ({{ den }})::numeric){%- endmacro %}
{% macro duckdb__int_div(num, den) -%}(({{ num }})::hugeint // ({{ den }})::hugeint){%- endmacro %}
{% macro spark__int_div(num, den) -%}(cast({{ num }} as decimal(38,0)) div cast({{ den }} as decimal(38,0))){%- endmacro %}

{# A wide integer type for cent arithmetic that can exceed 64 bits (balance x rate). #}
{% macro big_int(expr) -%}{{ return(adapter.dispatch('big_int', 'loanwatch')(expr)) }}{%- endmacro %}
{% macro default__big_int(expr) -%}cast({{ expr }} as numeric){%- endmacro %}
{% macro duckdb__big_int(expr) -%}cast({{ expr }} as hugeint){%- endmacro %}
{% macro spark__big_int(expr) -%}cast({{ expr }} as decimal(38,0)){%- endmacro %}

{# An amount of money: sums and differences of decimal(18,2) widen to 38 digits (128-bit
   arithmetic on DuckDB, slower to join, sort and store); loan-level running totals fit in 18. #}
{% macro money(expr) -%}cast({{ expr }} as decimal(18,2)){%- endmacro %}

{# A loan's running total of payments, held as money: beyond the largest amount (a client who
   paid more than 10^16 on one loan) it stays at that amount. Every schedule's total is below it
   (ingest quarantines larger ones), so whatever lies beyond is credit and changes no figure. #}
{% macro money_capped(expr) -%}cast(least({{ expr }}, 9999999999999999.99) as decimal(18,2)){%- endmacro %}

{# On an incremental build, a CTE of the changed rows that the optimizer must compute first, as
   written (`name as {{ materialized_if_incremental() }} (...)`); on a full build nothing is
   filtered out, and the CTE stays inline rather than buffering a whole table. #}
{% macro materialized_if_incremental() -%}
{%- if is_incremental() -%}{{ adapter.dispatch('materialized', 'loanwatch')() }}{%- endif -%}
{%- endmacro %}
{% macro default__materialized() -%}materialized{%- endmacro %}
{% macro spark__materialized() -%}{%- endmacro %}

{# Round half-up of num / den for non-negative integers: floor((2 num + den) / (2 den)).
   num must already be wide where it is a product (wrap a factor in big_int): a product of two
   bigints overflows before any cast around it applies. #}
{% macro round_half_up_div(num, den) -%}
cast({{ loanwatch.int_div('2 * ' ~ loanwatch.big_int(num) ~ ' + ' ~ loanwatch.big_int(den), '2 * ' ~ loanwatch.big_int(den)) }} as bigint)
{%- endmacro %}

{# Integer cents as an exact amount of money (a decimal product, never a float division:
   a double holds cents exactly only up to 2^53). #}
{% macro cents_to_money(cents) -%}cast(cast({{ cents }} as decimal(18,0)) * 0.01 as decimal(18,2)){%- endmacro %}

{# A date plus k months, the day clamped to the month's last day (METRICS §1). #}
{% macro add_months(date_expr, months) -%}{{ return(adapter.dispatch('add_months', 'loanwatch')(date_expr, months)) }}{%- endmacro %}
{% macro default__add_months(date_expr, months) -%}cast(({{ date_expr }}) + ({{ months }}) * interval '1 month' as date){%- endmacro %}
{% macro duckdb__add_months(date_expr, months) -%}cast(({{ date_expr }}) + to_months(cast({{ months }} as integer)) as date){%- endmacro %}
{% macro spark__add_months(date_expr, months) -%}add_months({{ date_expr }}, {{ months }}){%- endmacro %}

{# A date plus n days. #}
{% macro add_days(date_expr, days) -%}{{ return(adapter.dispatch('add_days', 'loanwatch')(date_expr, days)) }}{%- endmacro %}
{% macro default__add_days(date_expr, days) -%}cast(({{ date_expr }}) + ({{ days }}) * interval '1 day' as date){%- endmacro %}
{% macro duckdb__add_days(date_expr, days) -%}cast(({{ date_expr }}) + cast({{ days }} as integer) as date){%- endmacro %}
{% macro spark__add_days(date_expr, days) -%}date_add({{ date_expr }}, {{ days }}){%- endmacro %}

{# Whole days from start to end. #}
{% macro days_between(start_expr, end_expr) -%}{{ return(adapter.dispatch('days_between', 'loanwatch')(start_expr, end_expr)) }}{%- endmacro %}
{% macro default__days_between(start_expr, end_expr) -%}cast(cast({{ end_expr }} as date) - cast({{ start_expr }} as date) as bigint){%- endmacro %}
{% macro spark__days_between(start_expr, end_expr) -%}cast(datediff({{ end_expr }}, {{ start_expr }}) as bigint){%- endmacro %}

{# The last day of the month of a date. #}
{% macro month_end(date_expr) -%}{{ return(adapter.dispatch('month_end', 'loanwatch')(date_expr)) }}{%- endmacro %}
{% macro default__month_end(date_expr) -%}cast(date_trunc('month', {{ date_expr }}) + interval '1 month' - interval '1 day' as date){%- endmacro %}
{% macro duckdb__month_end(date_expr) -%}last_day({{ date_expr }}){%- endmacro %}
{% macro spark__month_end(date_expr) -%}last_day({{ date_expr }}){%- endmacro %}

{# 'YYYY-MM' of a date. #}
{% macro month_label(date_expr) -%}{{ return(adapter.dispatch('month_label', 'loanwatch')(date_expr)) }}{%- endmacro %}
{% macro default__month_label(date_expr) -%}to_char({{ date_expr }}, 'YYYY-MM'){%- endmacro %}
{% macro duckdb__month_label(date_expr) -%}strftime({{ date_expr }}, '%Y-%m'){%- endmacro %}
{% macro spark__month_label(date_expr) -%}date_format({{ date_expr }}, 'yyyy-MM'){%- endmacro %}

{# The first day of every month from the month of start through the month of end, as column month_start. #}
{# ISO week label, YYYY-Www (the ISO year: 2024-12-30 is 2025-W01). #}
{% macro week_label(date_expr) -%}{{ return(adapter.dispatch('week_label', 'loanwatch')(date_expr)) }}{%- endmacro %}
{% macro default__week_label(date_expr) -%}to_char({{ date_expr }}, 'IYYY-"W"IW'){%- endmacro %}
{% macro duckdb__week_label(date_expr) -%}strftime({{ date_expr }}, '%G-W%V'){%- endmacro %}
{% macro spark__week_label(date_expr) -%}
concat(cast(year(date_add({{ date_expr }}, 3 - ((dayofweek({{ date_expr }}) + 5) % 7))) as string), '-W', lpad(cast(weekofyear({{ date_expr }}) as string), 2, '0'))
{%- endmacro %}

{% macro month_starts(start_expr, end_expr) -%}{{ return(adapter.dispatch('month_starts', 'loanwatch')(start_expr, end_expr)) }}{%- endmacro %}
{% macro default__month_starts(start_expr, end_expr) -%}
select cast(gs as date) as month_start
from generate_series(date_trunc('month', {{ start_expr }}), date_trunc('month', {{ end_expr }}), interval '1 month') as gs
{%- endmacro %}
{% macro duckdb__month_starts(start_expr, end_expr) -%}
select cast(gs.generate_series as date) as month_start
from generate_series(date_trunc('month', {{ start_expr }}), date_trunc('month', {{ end_expr }}), interval 1 month) as gs
{%- endmacro %}
{% macro spark__month_starts(start_expr, end_expr) -%}
select explode(sequence(trunc({{ start_expr }}, 'MM'), trunc({{ end_expr }}, 'MM'), interval 1 month)) as month_start
{%- endmacro %}

{# An integer series 1..n per row, as column k: used to expand instalments. #}
{% macro series_join(n_expr) -%}{{ return(adapter.dispatch('series_join', 'loanwatch')(n_expr)) }}{%- endmacro %}
{% macro default__series_join(n_expr) -%}cross join lateral generate_series(1, {{ n_expr }}) as s(k){%- endmacro %}
{% macro duckdb__series_join(n_expr) -%}cross join lateral (select unnest(generate_series(1, {{ n_expr }})) as k) as s{%- endmacro %}
{% macro spark__series_join(n_expr) -%}lateral view explode(sequence(1, {{ n_expr }})) s as k{%- endmacro %}

{# A floating-point value (for the one formula that needs a real power: the annuity payment). #}
{% macro to_double(expr) -%}{{ return(adapter.dispatch('to_double', 'loanwatch')(expr)) }}{%- endmacro %}
{% macro default__to_double(expr) -%}cast({{ expr }} as double precision){%- endmacro %}
{% macro spark__to_double(expr) -%}cast({{ expr }} as double){%- endmacro %}

{# The median of a column (an aggregate). #}
{% macro median(expr) -%}{{ return(adapter.dispatch('median', 'loanwatch')(expr)) }}{%- endmacro %}
{% macro default__median(expr) -%}percentile_cont(0.5) within group (order by {{ expr }}){%- endmacro %}
{% macro duckdb__median(expr) -%}median({{ expr }}){%- endmacro %}
{% macro spark__median(expr) -%}percentile_approx({{ expr }}, 0.5){%- endmacro %}

{# Session limits before a run: DuckDB's memory limit (work beyond it spills to disk). #}
{% macro set_session_limits() -%}{{ return(adapter.dispatch('set_session_limits', 'loanwatch')()) }}{%- endmacro %}
{% macro default__set_session_limits() -%}select 1{%- endmacro %}
{% macro duckdb__set_session_limits() -%}
{%- set limit = var('memory_limit') | string -%}
{%- if not modules.re.fullmatch('[0-9]+(\\.[0-9]+)? ?[KMGT]i?B', limit) -%}
{{ exceptions.raise_compiler_error("memory_limit " ~ limit ~ ": use a size such as 3GB") }}
{%- endif -%}
set memory_limit = '{{ limit }}';
-- models order what they need themselves; not preserving insertion order lets large
-- operations stream and spill
set preserve_insertion_order = false
{%- endmacro %}

{# Hash joins built on the side the SQL puts on the right (on=true), then as the engine estimates
   again (on=false): a model's pre- and post-hook where the estimate is wrong. DuckDB builds a hash
   join's table on the side it estimates smaller; in fct_loan_states the loan-day intervals joined
   to their (filtered) loans look smaller than the instalments, so both instalment lookups built
   their tables on the wide intervals: at L, out of memory under 3GB. As written (the instalments
   on the right) it built in 8.7 s, peak 2.9 GB (docs/benchmarks.md). DuckDB's setting is the
   whole database's, not the connection's: for a model that runs beside it, the same choice (and
   if the model fails, for the rest of that build: dbt runs no post-hook then). For
   the whole build it cost more than it saved (fct_loan_snapshots 10 s -> 19 s at L), so not
   there. Nothing on the other engines. #}
{% macro hash_joins_as_written(on) -%}{{ return(adapter.dispatch('hash_joins_as_written', 'loanwatch')(on)) }}{%- endmacro %}
{% macro default__hash_joins_as_written(on) -%}{%- endmacro %}
{% macro duckdb__hash_joins_as_written(on) -%}
{%- if on -%}set disabled_optimizers = 'build_side_probe_side'{%- else -%}reset disabled_optimizers{%- endif -%}
{%- endmacro %}

{# After a table is written: PostgreSQL plans the next models' joins from the table's statistics,
   which a table just created or appended to has not got until autovacuum gets to it (a build
   planned int_servicing_states on none and ran it for minutes at M, 1.3 s with them). A project
   post-hook on every table model; nothing on the other engines. #}
{% macro analyze_table() -%}{{ return(adapter.dispatch('analyze_table', 'loanwatch')()) }}{%- endmacro %}
{% macro default__analyze_table() -%}{%- endmacro %}
{% macro postgres__analyze_table() -%}
{%- if model.config.materialized in ('table', 'incremental') -%}analyze {{ this }}{%- endif -%}
{%- endmacro %}

{# A date's month as a number (year * 12 + month): the months between two dates' months are a subtraction. #}
{% macro month_number(date_expr) -%}
(cast(extract(year from {{ date_expr }}) as integer) * 12 + cast(extract(month from {{ date_expr }}) as integer))
{%- endmacro %}

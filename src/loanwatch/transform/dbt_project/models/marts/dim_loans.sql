{% set recompute = recompute_set('loan_dimensions') %}
{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail',
          pre_hook=recompute_hook(recompute)) }}
-- One row per loan with what reports filter and group on.
with loans as (
    -- a loan's row changes with its terms, its client's or its merchant's latest version
    select * from {{ recomputed_rows(recompute, ref('loans')) }} as loans
),

clients as (
    select client_id, client_name, region, city from {{ ref('clients') }}
),

merchants as (
    select merchant_id, merchant_name from {{ ref('merchants') }}
)

select
    -- ids
    loans.loan_id,
    loans.client_id,
    loans.merchant_id,
    -- terms
    loans.product,
    loans.amount,
    loans.currency,
    loans.interest_rate,
    loans.issue_date,
    loans.term_months,
    loans.repayment,
    loans.risk_score,
    loans.fraud_score,
    -- status
    loans.source_status,
    loans.is_cancelled,
    loans.written_off_date,
    -- client and merchant
    case when clients.client_id is not null then coalesce(clients.client_name, clients.client_id) end as client_name,
    clients.region,
    clients.city,
    merchants.merchant_name
from loans
left join clients on clients.client_id = loans.client_id
left join merchants on merchants.merchant_id = loans.merchant_id

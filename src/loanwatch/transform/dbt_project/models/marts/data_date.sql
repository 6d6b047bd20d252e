-- The data date (METRICS §4) and the first issue date, published for reports and the dashboard:
-- one row, whatever the warehouse holds (loans, calls or a merchant ledger).
select * from {{ ref('int_data_date') }}

-- Recoveries (METRICS §5): the payments of a written-off loan made on or after its write-off
-- date, one row per payment, reversals applied (a reversed payment recovered nothing). The LGD of
-- provisions (METRICS §9) sums them over a window after each write-off, a report-time setting
-- ([provisions] lgd_window_months), against fct_loan_write_offs' written-off amounts.
-- Rebuilt whole at every build (a table, not incremental): a join of the written-off loans to
-- their payments.
select
    payments.payment_id,
    payments.loan_id,
    write_offs.written_off_date,
    payments.paid_date,
    {{ month_label('payments.paid_date') }} as month,
    {{ money('payments.amount') }} as recovery_amount
from {{ ref('fct_loan_write_offs') }} as write_offs
inner join {{ ref('payments') }} as payments
    on payments.loan_id = write_offs.loan_id
    and payments.is_effective
    and payments.paid_date >= write_offs.written_off_date

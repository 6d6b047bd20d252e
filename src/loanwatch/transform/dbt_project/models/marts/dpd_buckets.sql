-- DPD buckets of active loans (METRICS §3), one place for their bounds: marts and reports join it.
-- transition_state: the bucket's state in the provisions' transition matrix (METRICS §9): the
-- buckets up to 90 days are states of their own, beyond 90 days a loan is in default.
select 'current' as bucket, 0 as min_dpd, 0 as max_dpd, 1 as sort_order, 'current' as transition_state
union all select '1-30', 1, 30, 2, '1-30'
union all select '31-60', 31, 60, 3, '31-60'
union all select '61-90', 61, 90, 4, '61-90'
union all select '91-180', 91, 180, 5, 'default'
union all select '181+', 181, 2147483647, 6, 'default'

-- DPD buckets of active loans (METRICS §3), one place for their bounds: marts and reports join it.
select 'current' as bucket, 0 as min_dpd, 0 as max_dpd, 1 as sort_order
union all select '1-30', 1, 30, 2
union all select '31-60', 31, 60, 3
union all select '61-90', 61, 90, 4
union all select '91-180', 91, 180, 5
union all select '181+', 181, 2147483647, 6

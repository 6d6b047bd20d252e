-- The six states of the provisions' transition matrix (METRICS §9), one place for their order:
-- the four DPD bands of an active loan up to 90 days, then default (DPD > 90, or written off) and
-- closed, which are absorbing (their rows of the matrix are not estimated). Which DPD bucket is
-- which state is dpd_buckets.transition_state; fct_state_transitions maps the exits.
select 'current' as state, 1 as sort_order, false as is_absorbing
union all select '1-30', 2, false
union all select '31-60', 3, false
union all select '61-90', 4, false
union all select 'default', 5, true
union all select 'closed', 6, true

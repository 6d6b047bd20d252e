-- The latest version of every merchant that is not deleted.
select *
from {{ ref('merchant_versions') }}
where is_current

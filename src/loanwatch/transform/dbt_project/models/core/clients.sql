-- The latest version of every client that is not deleted.
select *
from {{ ref('client_versions') }}
where is_current

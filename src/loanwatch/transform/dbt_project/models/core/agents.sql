-- The latest version of every agent that is not deleted.
select *
from {{ ref('agent_versions') }}
where is_current

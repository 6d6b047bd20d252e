{{ versions(ref('stg_agents'), 'agent_id') }}

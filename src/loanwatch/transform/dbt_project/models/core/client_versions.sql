{{ versions(ref('stg_clients'), 'client_id') }}

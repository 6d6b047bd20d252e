{{ versions(ref('stg_merchants'), 'merchant_id') }}

{{ versions(ref('stg_loans'), 'loan_id') }}

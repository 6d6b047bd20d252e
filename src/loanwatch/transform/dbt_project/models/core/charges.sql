{{ config(materialized='table') }}
-- Charges (fees and penalties) with reversals applied (contract v3, METRICS §2;
-- macros/reversals.sql). Rebuilt whole at every build: servicing events are a small table beside
-- payments.
{{ reversals_applied(ref('stg_charges'), 'charge', 'charged_at') }}

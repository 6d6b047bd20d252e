{#- Set clients (client_versions, clients): the clients with new versions. -#}
{% macro clients_recomputed() -%}
{{ return([{'select': 'select client_id from ' ~ source('raw', 'clients') ~ ' where batch_id > ' ~ since_batch(),
            'keys': ['client_id']}]) }}
{%- endmacro %}

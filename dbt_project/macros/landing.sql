{#-
    The landing zone as relations. DuckDB reads the Parquet files through the sources'
    external_location; Spark gets views over the same files, created at the start of a run.
-#}
{% macro create_landing_relations() -%}
    {{ return(adapter.dispatch('create_landing_relations', 'chat_analytics')()) }}
{%- endmacro %}

{% macro default__create_landing_relations() -%}
    select 1
{%- endmacro %}

{% macro spark__create_landing_relations() -%}
    {%- set root = env_var('CHAT_ANALYTICS_HOME', 'warehouse') ~ '/landing/loads' -%}
    {%- do run_query('create database if not exists landing') -%}
    {%- for name in ['events', 'quarantine', 'conflicts', 'audit'] -%}
        {%- do run_query(
            'create or replace view landing.' ~ name ~ ' as select * from parquet.`'
            ~ root ~ '/*/' ~ name ~ '.parquet`'
        ) -%}
    {%- endfor -%}
    select 1
{%- endmacro %}


{#- The last component of a file path (the load audit publishes names, not server paths). -#}
{% macro file_name(path_column) -%}
    {{ return(adapter.dispatch('file_name', 'chat_analytics')(path_column)) }}
{%- endmacro %}

{% macro default__file_name(path_column) -%}
    regexp_extract({{ path_column }}, '[^/]*$')
{%- endmacro %}

{#- Spark's regexp_extract needs the group index. -#}
{% macro spark__file_name(path_column) -%}
    regexp_extract({{ path_column }}, '[^/]*$', 0)
{%- endmacro %}

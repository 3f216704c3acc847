{#-
    The committed loads a run covers, fixed once when the run starts.

    Loads commit one at a time under the landing lock, each with a load time later than every
    load before it, so "every load up to time T" names an exact set. The run records T in
    audit.build_window before any model runs; every model reads landed rows up to T and no
    further, so a load that commits while the run is under way is taken whole by the next run.
-#}
{% macro fix_build_window() -%}
    {%- if execute and flags.WHICH in ('run', 'build') -%}
        {%- do run_query(adapter.dispatch('create_build_window', 'chat_analytics')()) -%}
    {%- endif -%}
    select 1
{%- endmacro %}


{#- The load time of the latest committed load, read from the folder names (a load's folder
    is named after its load time), so fixing the window reads no data files. -#}
{% macro default__create_build_window() -%}
    {%- set loads = env_var('CHAT_ANALYTICS_HOME', 'warehouse') ~ '/landing/loads' -%}
    {%- do run_query('create schema if not exists audit') -%}
    create or replace table audit.build_window as
    with committed as (
        select
            try_strptime(
                split_part(string_split(listed.file, '/')[-2], '-', 1), '%Y%m%dT%H%M%S%f'
            ) as loaded_at
        from glob('{{ loads }}/*/audit.parquet') as listed
    )

    select
        max(committed.loaded_at) as landed_until,
        current_timestamp as fixed_at
    from committed
{%- endmacro %}


{#- Spark reads the landing zone through views (create_landing_relations), created just before. -#}
{% macro spark__create_build_window() -%}
    {%- do run_query('create database if not exists audit') -%}
    {%- do run_query('drop table if exists audit.build_window') -%}
    create table audit.build_window as
    select
        max(loaded_at) as landed_until,
        current_timestamp() as fixed_at
    from landing.audit
{%- endmacro %}


{#- A filter for models that read the landing zone: rows of the run's committed loads only.
    Unit tests feed fixture rows instead of the landing zone, and a compile outside any run
    has no window yet: both see every row. -#}
{% macro in_build_window(loaded_at_column, landing_relation) -%}
    {%- set window_relation = adapter.get_relation(
        database=target.database, schema='audit', identifier='build_window'
    ) if execute else none -%}
    {%- if window_relation is none or (landing_relation | string).startswith('__dbt__cte__') -%}
        true
    {%- else -%}
        {%- set window = run_query(
            'select cast(landed_until as ' ~ dbt.type_string() ~ ') from ' ~ window_relation
        ) -%}
        {%- set landed_until = window.columns[0].values()[0] if window.rows | length else none -%}
        {%- if landed_until is none -%}
            false
        {%- else -%}
            {{ loaded_at_column }} <= cast('{{ landed_until }}' as timestamp)
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

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
    {%- do run_query(
        'create table if not exists audit.tested_windows (landed_until timestamp, fixed_at timestamp)'
    ) -%}
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
        {{ tested_until() }} as tested_until,
        current_timestamp as fixed_at
    from committed
{%- endmacro %}


{#- Spark reads the landing zone through views (create_landing_relations), created just before. -#}
{% macro spark__create_build_window() -%}
    {%- do run_query('create database if not exists audit') -%}
    {%- do run_query('drop table if exists audit.build_window') -%}
    {%- do run_query(
        'create table if not exists audit.tested_windows (landed_until timestamp, fixed_at timestamp) using parquet'
    ) -%}
    create table audit.build_window as
    select
        max(loaded_at) as landed_until,
        {{ tested_until() }} as tested_until,
        current_timestamp() as fixed_at
    from landing.audit
{%- endmacro %}


{#- Where the rows this build must test begin: after the last fully tested window, or
    nowhere (test every row) on a full refresh or when the var test_all_rows is set. -#}
{% macro tested_until() -%}
    {%- if flags.FULL_REFRESH or var('test_all_rows', false) -%}
        cast(null as timestamp)
    {%- else -%}
        (select max(tested.landed_until) from audit.tested_windows as tested)
    {%- endif -%}
{%- endmacro %}


{#- A filter for models that read the landing zone: rows of the run's committed loads only.
    Unit tests feed fixture rows instead of the landing zone, and a compile outside any run
    has no window yet: both see every row. -#}
{% macro in_build_window(loaded_at_column, landing_relation) -%}
    {%- set landed_until = none if (landing_relation | string).startswith('__dbt__cte__')
        else build_window_bound('landed_until') -%}
    {%- if landed_until is none -%}
        true
    {%- elif landed_until == '' -%}
        false
    {%- else -%}
        {{ loaded_at_column }} <= cast('{{ landed_until }}' as timestamp)
    {%- endif -%}
{%- endmacro %}


{#- One bound of the run's window, as text: none when no window is fixed (outside a run), ''
    when the window has no such bound. -#}
{% macro build_window_bound(column) -%}
    {%- set window_relation = adapter.get_relation(
        database=target.database, schema='audit', identifier='build_window'
    ) if execute else none -%}
    {%- if window_relation is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set window = run_query(
        'select cast(' ~ column ~ ' as ' ~ dbt.type_string() ~ ') from ' ~ window_relation
    ) -%}
    {%- set value = window.columns[0].values()[0] if window.rows | length else none -%}
    {{ return('' if value is none else value) }}
{%- endmacro %}


{#-
    Tests bound to what a build changed.

    A model that names its `changed_rows_column` in its meta (the load time of the newest
    event behind each row) is tested on the rows this build wrote: rows loaded after the
    window of the last build whose tests all passed. Rows an earlier build wrote were tested
    then, and an incremental build leaves them as they were, so a daily build's tests cost
    what its new data costs, not what the history holds. `--full-refresh`, the var
    `test_all_rows` (the weekly schedule sets it) and a first build test every row.
-#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where') -%}
    {%- if where == '__changed_rows__' -%}
        {%- set where = changed_rows_filter() -%}
    {%- endif -%}
    {%- if where -%}
        {%- do return('(select * from ' ~ relation ~ ' where ' ~ where ~ ') dbt_subquery') -%}
    {%- endif -%}
    {%- do return(relation) -%}
{%- endmacro %}


{% macro changed_rows_filter() -%}
    {%- if not execute or model.attached_node is none or model.attached_node not in graph.nodes -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set column = graph.nodes[model.attached_node].config.meta.get('changed_rows_column') -%}
    {%- set tested_until = build_window_bound('tested_until') if column else none -%}
    {%- if not tested_until -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return(column ~ " > cast('" ~ tested_until ~ "' as timestamp)") }}
{%- endmacro %}


{#- The window of the last build whose every test passed, recorded as the build ends: only
    when every data test of the project ran (a build of a selection has not tested
    everything) and no node failed. -#}
{% macro record_tested_window(results) -%}
    {%- if execute and flags.WHICH == 'build' -%}
        {%- set tests = graph.nodes.values() | selectattr('resource_type', 'equalto', 'test') | list -%}
        {%- set tested = results | selectattr('node.resource_type', 'equalto', 'test') | list -%}
        {%- set unfinished = results | rejectattr('status', 'in', ['pass', 'success', 'warn', 'no-op']) | list -%}
        {%- if tested | length == tests | length and not unfinished -%}
            {%- do run_query(
                'insert into audit.tested_windows select landed_until, fixed_at from audit.build_window'
            ) -%}
        {%- endif -%}
    {%- endif -%}
    select 1
{%- endmacro %}

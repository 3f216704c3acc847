{#-
    Definitions that incremental models bake into the rows they keep.

    The outcome ladder and the A/B metrics record a definition_version with their rows and
    evaluate every row again when it changes. The vars below have no such version: a row is
    computed once, under the value the var had then (a conversation's score, whether a
    session was asked for feedback, a latency's sketch bucket). An incremental build after one
    of them changed would mix rows of both definitions in one mart, so it is refused, naming
    the vars and the remedy; a full refresh of every model records the new values.
-#}
{% macro stored_definition_vars() -%}
    {{ return([
        'efficiency_penalty_per_message',
        'efficiency_target_messages',
        'feedback_eligible_min_messages',
        'latency_relative_accuracy',
        'score_weight_efficiency',
        'score_weight_goal_completion',
        'score_weight_resolution',
        'score_weight_sentiment',
    ]) }}
{%- endmacro %}


{#- The vars' values, as numbers: 3 and 3.0 are one value. -#}
{% macro definition_vars() -%}
    {%- set values = {} -%}
    {%- for name in stored_definition_vars() -%}
        {%- do values.update({name: var(name) | float}) -%}
    {%- endfor -%}
    {{ return(values) }}
{%- endmacro %}


{#- on-run-start: an incremental run or build under changed definitions stops here. -#}
{% macro guard_definition_vars() -%}
    {%- if execute and flags.WHICH in ('run', 'build') and not flags.FULL_REFRESH -%}
        {%- set recorded = recorded_definition_vars() -%}
        {%- if recorded is not none -%}
            {%- set current = definition_vars() -%}
            {%- set changes = [] -%}
            {%- for name in current | sort -%}
                {%- if recorded.get(name) != current[name] -%}
                    {%- do changes.append(name ~ ' ' ~ recorded.get(name) ~ ' -> ' ~ current[name]) -%}
                {%- endif -%}
            {%- endfor -%}
            {%- if changes -%}
                {{ exceptions.raise_compiler_error(
                    'dbt vars that define rows the marts keep changed since the last full build ('
                    ~ changes | join(', ') ~ '): an incremental build would mix rows of both '
                    ~ 'definitions. Run `chat-analytics build --full-refresh` to rebuild every '
                    ~ 'model under the new values, or set the vars back.'
                ) }}
            {%- endif -%}
        {%- endif -%}
    {%- endif -%}
    select 1
{%- endmacro %}


{#- The values the marts were built under (none before a build recorded them). -#}
{% macro recorded_definition_vars() -%}
    {%- set relation = adapter.get_relation(
        database=target.database, schema='audit', identifier='definition_vars'
    ) -%}
    {%- if relation is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set result = run_query('select definition_json from ' ~ relation) -%}
    {{ return(fromjson(result.rows[0][0]) if result.rows | length else none) }}
{%- endmacro %}


{#- on-run-end: record the values once every model of the project was built under them (a
    build of a selection leaves the other models as they were; a failed test does not undo
    a model). An incremental run that got here ran under the recorded values, or under the
    first ones. -#}
{% macro record_definition_vars(results) -%}
    {%- if execute and flags.WHICH in ('run', 'build') -%}
        {%- set models = graph.nodes.values() | selectattr('resource_type', 'equalto', 'model') | list -%}
        {%- set built = results | selectattr('node.resource_type', 'equalto', 'model')
            | selectattr('status', 'equalto', 'success') | list -%}
        {%- if built | length == models | length -%}
            {%- set definition_json = tojson(definition_vars(), sort_keys=true) -%}
            {%- do run_query(adapter.dispatch('write_definition_vars', 'chat_analytics')(definition_json)) -%}
        {%- endif -%}
    {%- endif -%}
    select 1
{%- endmacro %}


{% macro default__write_definition_vars(definition_json) -%}
    create or replace table audit.definition_vars as
    select '{{ definition_json }}' as definition_json, current_timestamp as recorded_at
{%- endmacro %}


{% macro spark__write_definition_vars(definition_json) -%}
    {%- do run_query('drop table if exists audit.definition_vars') -%}
    create table audit.definition_vars using parquet as
    select '{{ definition_json }}' as definition_json, current_timestamp() as recorded_at
{%- endmacro %}

{#-
    The outcome ladder's definition: its three vars as canonical JSON (sorted keys, no
    spaces), and a version that changes when any of them does.
-#}
{% macro outcome_definition_json() -%}
    {%- set evidence = var('resolution_evidence') -%}
    {{ return(
        '{"positive_rating_min":' ~ (var('positive_rating_min') | int)
        ~ ',"recontact_window_days":' ~ (var('recontact_window_days') | int)
        ~ ',"resolution_evidence":["' ~ (evidence | join('","')) ~ '"]}'
    ) }}
{%- endmacro %}


{% macro outcome_definition_version() -%}
    {{ return(adapter.dispatch('outcome_definition_version', 'chat_analytics')()) }}
{%- endmacro %}

{% macro default__outcome_definition_version() -%}
    left(sha256('{{ outcome_definition_json() }}'), 12)
{%- endmacro %}

{% macro spark__outcome_definition_version() -%}
    left(sha2('{{ outcome_definition_json() }}', 256), 12)
{%- endmacro %}


{#- The end of a session's recontact window, to the microsecond (dbt-spark's dateadd keeps
    only the date of a timestamp; an interval literal means the same on both engines). -#}
{% macro recontact_window_end(ended_at) -%}
    ({{ ended_at }} + interval '{{ var('recontact_window_days') | int }}' day)
{%- endmacro %}


{#-
    Sessions whose outcome may differ from the last run, for a model with watermark column
    `last_loaded_at`: sessions rebuilt since the watermark; other sessions of their users
    (before and after a change of user) whose recontact window can reach them; resolved
    sessions whose verification came due since the latest event the previous run saw (a
    lower bound of it: the latest end among sessions not touched since); and every session
    when the definition changed (`stored_versions`: a query of the definition versions the
    model holds).
-#}
{% macro sessions_with_changed_outcomes(outcomes, stored_versions) -%}
    {%- set touched_filter = loaded_after_watermark('sessions.last_loaded_at') -%}
    {#- the outer distinct adds no work but tells DuckDB the list is short: it then builds its
        hash table on the list instead of on every session (at 16M events 760 -> 450 ms) -#}
    select distinct changed.session_id
    from (
    select touched.session_id
    from {{ ref('fct_sessions') }} as touched
    where {{ loaded_after_watermark('touched.last_loaded_at') }}
    union
    select others.session_id
    from {{ ref('fct_sessions') }} as others
    inner join (
        {#- users as user_number, user_key's one-to-one integer: matching every session of the
            history against them costs half of what matching the key strings does -#}
        select sessions.user_number, sessions.session_started_at, sessions.session_ended_at
        from {{ ref('fct_sessions') }} as sessions
        where {{ touched_filter }}
        union all
        select
            {{ user_number('stored.user_key') }} as user_number,
            stored.session_started_at,
            stored.session_ended_at
        from {{ outcomes }} as stored
        inner join {{ ref('fct_sessions') }} as sessions on stored.session_id = sessions.session_id
        where {{ touched_filter }}
    ) as touched_users
        on
            others.user_number = touched_users.user_number
            and others.session_started_at < touched_users.session_ended_at
            and {{ recontact_window_end('others.session_ended_at') }} >= touched_users.session_started_at
    union
    select outcomes.session_id
    from {{ outcomes }} as outcomes
    where
        outcomes.is_resolved
        and outcomes.verification_due_at <= (select max(session_ended_at) from {{ ref('fct_sessions') }})
        and outcomes.verification_due_at > coalesce((
            select max(sessions.session_ended_at)
            from {{ ref('fct_sessions') }} as sessions
            where not ({{ touched_filter }})
        ), cast('1900-01-01' as timestamp))
    union
    select outcomes.session_id
    from {{ outcomes }} as outcomes
    where exists (
        select 1 from ({{ stored_versions }}) as stored
        where stored.definition_version <> {{ outcome_definition_version() }}
    )
    ) as changed
{%- endmacro %}

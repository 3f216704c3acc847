{{
    config(
        materialized=incremental_materialization(),
        unique_key='session_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
    )
}}

{#- One row per session and tool it called: calls and failures. Rebuilt for sessions that
    fct_sessions rebuilt. -#}

-- depends_on: {{ ref('fct_sessions') }}

with events as (

    select * from {{ ref('stg_landing__events') }}

),

tool_events as (

    select
        session_id,
        tool_name,
        tool_success,
        loaded_at
    from events
    where
        event_type = 'tool_called'
    {% if is_incremental() %}
        and session_id in ({{ sessions_rebuilt_since_watermark() }})
    {% endif %}

),

final as (

    select
        session_id,
        tool_name,
        count(*) as calls,
        count(case when tool_success = false then 1 end) as failures,
        max(loaded_at) as last_loaded_at
    from tool_events
    group by session_id, tool_name

)

select * from final

{{
    config(
        materialized=incremental_materialization(),
        unique_key='metric_date',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        pre_hook="{{ delete_affected_session_dates('metric_date') }}",
    )
}}

with sessions as (

    select
        session_id,
        session_date,
        channel,
        coalesce(agent_version, 'unknown') as agent_version,
        last_loaded_at
    from {{ ref('fct_sessions') }}
    {% if is_incremental() %}
        where session_date in ({{ affected_session_dates() }})
    {% endif %}

),

session_tools as (

    select * from {{ ref('int_sessions__tool_calls') }}

),

final as (

    select
        sessions.session_date as metric_date,
        sessions.channel,
        sessions.agent_version,
        session_tools.tool_name,
        cast(sum(session_tools.calls) as bigint) as calls,
        cast(sum(session_tools.failures) as bigint) as failures,
        count(*) as sessions,
        max(sessions.last_loaded_at) as last_loaded_at
    from session_tools
    inner join sessions on session_tools.session_id = sessions.session_id
    group by sessions.session_date, sessions.channel, sessions.agent_version, session_tools.tool_name

)

select * from final

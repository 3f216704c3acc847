{{
    config(
        materialized=incremental_materialization(),
        unique_key='session_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
    )
}}

{#- One row per session, latency kind and DDSketch bucket with the number of samples: the
    session's first response, each agent message's latency_ms and each tool call's
    duration_ms (numeric and >= 0). Rebuilt for sessions that fct_sessions rebuilt. -#}

with events as (

    select * from {{ ref('stg_landing__events') }}

),

sessions as (

    select * from {{ ref('fct_sessions') }}
    {% if is_incremental() %}
        where {{ loaded_after_watermark('last_loaded_at') }}
    {% endif %}

),

samples as (

    -- each sample carries its session's lineage: the session's row is joined once
    select
        session_id,
        'first_response' as latency_kind,
        cast(first_response_ms as double) as latency_ms,
        last_loaded_at
    from sessions
    where first_response_ms is not null
    union all
    select
        events.session_id,
        case
            when events.event_type = 'message_received' then 'agent_message'
            else 'tool:' || events.tool_name
        end as latency_kind,
        case
            when events.event_type = 'message_received' then events.latency_ms
            else events.tool_duration_ms
        end as latency_ms,
        sessions.last_loaded_at
    from events
    inner join sessions on events.session_id = sessions.session_id
    where
        (events.event_type = 'message_received' and events.latency_ms >= 0)
        or (events.event_type = 'tool_called' and events.tool_duration_ms >= 0)

),

final as (

    select
        samples.session_id,
        samples.latency_kind,
        {{ ddsketch_bucket('samples.latency_ms') }} as bucket,
        count(*) as samples,
        max(samples.last_loaded_at) as last_loaded_at
    from samples
    group by samples.session_id, samples.latency_kind, {{ ddsketch_bucket('samples.latency_ms') }}

)

select * from final

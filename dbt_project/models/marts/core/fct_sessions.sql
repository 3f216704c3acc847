{{
    config(
        materialized=incremental_materialization(),
        unique_key='session_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
    )
}}

with events as (

    select * from {{ ref('stg_landing__events') }}

),

session_events as (

    select events.*
    from events
    {% if is_incremental() %}
        where events.session_id in ({{ touched_session_ids(ref('stg_landing__events')) }})
    {% endif %}

),

session_totals as (

    -- one pass per session; "first" and "latest" follow (event_timestamp, event_id)
    select
        session_id,
        min(event_timestamp) as session_started_at,
        max(event_timestamp) as session_ended_at,
        min(loaded_at) as first_loaded_at,
        max(loaded_at) as last_loaded_at,
        {{ first_by('channel', ['event_timestamp', 'event_id'], where='channel is not null') }}
            as channel,
        {{ first_by(
            'agent_version', ['event_timestamp', 'event_id'], where='agent_version is not null'
        ) }} as agent_version,
        {{ first_by('user_id', ['event_timestamp', 'event_id'], where='user_id is not null') }}
            as first_user_id,
        {{ last_by(
            'rating', ['event_timestamp', 'event_id'],
            where="event_type = 'feedback_submitted' and rating is not null"
        ) }} as rating,
        min(
            case when event_type = 'message_sent' then event_timestamp end
        ) as first_message_sent_at,
        count(*) as event_count,
        count(case when event_type = 'message_sent' then 1 end) as user_messages,
        count(case when event_type = 'message_received' then 1 end) as agent_messages,
        count(case when event_type = 'fallback_triggered' then 1 end) as fallback_count,
        count(case when event_type = 'escalation_requested' then 1 end) as escalation_count,
        count(case when event_type = 'conversion' then 1 end) as conversion_count,
        count(case when event_type = 'feedback_submitted' then 1 end) as feedback_count,
        count(case when event_type = 'flow_started' then 1 end) as flows_started,
        count(case when event_type = 'flow_completed' then 1 end) as flows_completed,
        count(case when event_type = 'flow_abandoned' then 1 end) as flows_abandoned,
        count(case when event_type = 'tool_called' then 1 end) as tool_calls,
        count(
            case when event_type = 'tool_called' and tool_success = false then 1 end
        ) as tool_failures,
        count(case when event_type = 'session_end' then 1 end) as session_end_count,
        count(
            case when event_type = 'feedback_submitted' and feedback_thumbs = 'up' then 1 end
        ) as thumbs_up_count,
        coalesce(sum(tokens_in), 0) as tokens_in,
        coalesce(sum(tokens_out), 0) as tokens_out,
        coalesce(sum(cost_usd), 0.0e0) as cost_usd
    from session_events
    group by session_id

),

first_response as (

    -- the first agent message at or after the first user message (a greeting does not count)
    select
        session_totals.session_id,
        min(session_events.event_timestamp) as first_response_at
    from session_totals
    inner join session_events
        on
            session_totals.session_id = session_events.session_id
            and session_events.event_type = 'message_received'
            and session_totals.first_message_sent_at <= session_events.event_timestamp
    group by session_totals.session_id

),

final as (

    select
        -- ids; the user only as a salted pseudonym, never the raw user_id
        session_totals.session_id,
        {{ user_key('session_totals.first_user_id') }} as user_key,
        {{ user_number(user_key('session_totals.first_user_id')) }} as user_number,

        -- dimensions
        cast(session_totals.session_started_at as date) as session_date,
        session_totals.channel,
        session_totals.agent_version,

        -- timestamps
        session_totals.session_started_at,
        session_totals.session_ended_at,

        -- measures
        {{ milliseconds_between(
            'session_totals.session_started_at', 'session_totals.session_ended_at'
        ) }} / 1000.0e0 as duration_seconds,
        session_totals.event_count,
        session_totals.user_messages,
        session_totals.agent_messages,
        {{ milliseconds_between(
            'session_totals.first_message_sent_at', 'first_response.first_response_at'
        ) }} as first_response_ms,
        session_totals.fallback_count,
        session_totals.conversion_count,
        session_totals.rating,
        session_totals.flows_started,
        session_totals.flows_completed,
        session_totals.flows_abandoned,
        session_totals.tool_calls,
        session_totals.tool_failures,
        cast(session_totals.tokens_in as bigint) as tokens_in,
        cast(session_totals.tokens_out as bigint) as tokens_out,
        session_totals.cost_usd,

        -- flags
        session_totals.escalation_count > 0 as is_escalated,
        session_totals.conversion_count > 0 as is_converted,
        session_totals.feedback_count > 0 as has_feedback,
        session_totals.session_end_count > 0 as has_session_end,
        session_totals.thumbs_up_count > 0 as has_thumbs_up,
        session_totals.user_messages + session_totals.agent_messages
        > {{ var('feedback_eligible_min_messages') }} as is_feedback_eligible,

        -- lineage
        session_totals.first_loaded_at,
        session_totals.last_loaded_at

    from session_totals
    left join first_response on session_totals.session_id = first_response.session_id

)

select * from final

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
        where events.session_id in ({{ touched_session_ids('events') }})
    {% endif %}

),

ordered_events as (

    select
        session_id,
        event_id,
        event_type,
        channel,
        user_id,
        agent_version,
        event_timestamp,
        row_number() over (
            partition by session_id order by event_timestamp, event_id
        ) as event_order
    from session_events

),

earliest_event as (

    select
        session_id,
        channel
    from ordered_events
    where event_order = 1

),

first_agent_version as (

    select
        session_id,
        agent_version
    from (
        select
            session_id,
            agent_version,
            row_number() over (
                partition by session_id order by event_timestamp, event_id
            ) as version_order
        from ordered_events
        where agent_version is not null
    ) as versioned
    where version_order = 1

),

first_user as (

    select
        session_id,
        user_id
    from (
        select
            session_id,
            user_id,
            row_number() over (
                partition by session_id order by event_timestamp, event_id
            ) as user_order
        from ordered_events
        where user_id is not null
    ) as identified_events
    where user_order = 1

),

first_user_message as (

    select
        session_id,
        min(event_timestamp) as first_message_sent_at
    from session_events
    where event_type = 'message_sent'
    group by session_id

),

first_response as (

    -- the first agent message at or after the first user message (a greeting does not count)
    select
        first_user_message.session_id,
        first_user_message.first_message_sent_at,
        min(session_events.event_timestamp) as first_response_at
    from first_user_message
    inner join session_events
        on
            first_user_message.session_id = session_events.session_id
            and session_events.event_type = 'message_received'
            and first_user_message.first_message_sent_at <= session_events.event_timestamp
    group by first_user_message.session_id, first_user_message.first_message_sent_at

),

latest_rating as (

    select
        session_id,
        rating
    from (
        select
            session_id,
            rating,
            row_number() over (
                partition by session_id order by event_timestamp desc, event_id desc
            ) as rating_recency
        from session_events
        where event_type = 'feedback_submitted' and rating is not null
    ) as rated
    where rating_recency = 1

),

session_totals as (

    select
        session_id,
        min(event_timestamp) as session_started_at,
        max(event_timestamp) as session_ended_at,
        max(loaded_at) as last_loaded_at,
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
        count(case when event_type = 'session_end' then 1 end) as session_end_count
    from session_events
    group by session_id

),

final as (

    select
        -- ids
        session_totals.session_id,
        first_user.user_id,

        -- dimensions
        cast(session_totals.session_started_at as date) as session_date,
        earliest_event.channel,
        first_agent_version.agent_version,

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
            'first_response.first_message_sent_at', 'first_response.first_response_at'
        ) }} as first_response_ms,
        session_totals.fallback_count,
        session_totals.conversion_count,
        latest_rating.rating,
        session_totals.flows_started,
        session_totals.flows_completed,
        session_totals.flows_abandoned,
        session_totals.tool_calls,
        session_totals.tool_failures,

        -- flags
        session_totals.escalation_count > 0 as is_escalated,
        session_totals.conversion_count > 0 as is_converted,
        session_totals.feedback_count > 0 as has_feedback,
        session_totals.session_end_count > 0 as has_session_end,
        session_totals.user_messages + session_totals.agent_messages
        > {{ var('feedback_eligible_min_messages') }} as is_feedback_eligible,

        -- lineage
        session_totals.last_loaded_at

    from session_totals
    inner join earliest_event on session_totals.session_id = earliest_event.session_id
    left join first_agent_version on session_totals.session_id = first_agent_version.session_id
    left join first_user on session_totals.session_id = first_user.session_id
    left join first_response on session_totals.session_id = first_response.session_id
    left join latest_rating on session_totals.session_id = latest_rating.session_id

)

select * from final

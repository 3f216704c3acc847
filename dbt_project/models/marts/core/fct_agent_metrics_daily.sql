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

    select * from {{ ref('fct_sessions') }}
    {% if is_incremental() %}
    where session_date in ({{ affected_session_dates() }})
    {% endif %}

),

additive as (

    select
        session_date as metric_date,
        channel,
        coalesce(agent_version, 'unknown') as agent_version,
        count(*) as sessions,
        sum(duration_seconds) as total_duration_seconds,
        cast(sum(user_messages) as bigint) as user_messages,
        count(case when is_escalated then 1 end) as escalated_sessions,
        cast(sum(fallback_count) as bigint) as fallback_count,
        count(case when is_converted then 1 end) as converted_sessions,
        count(case when first_response_ms is not null then 1 end) as first_response_sessions,
        cast(coalesce(sum(first_response_ms), 0) as bigint) as total_first_response_ms,
        count(case when rating is not null then 1 end) as rated_sessions,
        cast(coalesce(sum(rating), 0) as bigint) as total_rating,
        count(case when is_feedback_eligible then 1 end) as feedback_eligible_sessions,
        count(
            case when is_feedback_eligible and has_feedback then 1 end
        ) as feedback_eligible_responded,
        max(last_loaded_at) as last_loaded_at
    from sessions
    group by session_date, channel, coalesce(agent_version, 'unknown')

),

final as (

    select
        -- grain
        metric_date,
        channel,
        agent_version,

        -- additive columns
        sessions,
        total_duration_seconds,
        user_messages,
        escalated_sessions,
        fallback_count,
        converted_sessions,
        first_response_sessions,
        total_first_response_ms,
        rated_sessions,
        total_rating,
        feedback_eligible_sessions,
        feedback_eligible_responded,

        -- rates, recomputed from the additive columns
        {{ safe_divide('total_duration_seconds', 'sessions') }} as avg_session_duration_seconds,
        {{ safe_divide('user_messages', 'sessions') }} as avg_messages_per_session,
        {{ safe_divide('escalated_sessions', 'sessions') }} as escalation_rate,
        1.0e0 - {{ safe_divide('escalated_sessions', 'sessions') }} as resolution_rate,
        {{ safe_divide('fallback_count', 'user_messages') }} as fallback_rate,
        {{ safe_divide('converted_sessions', 'sessions') }} as conversion_rate,
        {{ safe_divide('total_first_response_ms', 'first_response_sessions') }}
            as avg_first_response_ms,
        {{ safe_divide('total_rating', 'rated_sessions') }} as avg_satisfaction_score,
        {{ safe_divide('feedback_eligible_responded', 'feedback_eligible_sessions') }}
            as feedback_response_rate,

        -- lineage
        last_loaded_at

    from additive

)

select * from final

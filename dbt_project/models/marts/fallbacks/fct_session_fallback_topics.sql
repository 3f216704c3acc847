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

sessions as (

    select * from {{ ref('fct_sessions') }}

),

fallbacks as (

    select
        session_id,
        fallback_topic,
        loaded_at
    from events
    where
        event_type = 'fallback_triggered'
    {% if is_incremental() %}
        and session_id in ({{ sessions_rebuilt_since_watermark() }})
    {% endif %}

),

per_topic as (

    select
        session_id,
        fallback_topic as topic,
        count(*) as fallback_count,
        max(loaded_at) as last_loaded_at
    from fallbacks
    group by session_id, fallback_topic

),

final as (

    select
        per_topic.session_id,
        per_topic.topic,
        sessions.session_date,
        per_topic.fallback_count,
        per_topic.last_loaded_at
    from per_topic
    inner join sessions on per_topic.session_id = sessions.session_id

)

select * from final

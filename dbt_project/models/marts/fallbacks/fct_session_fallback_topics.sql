{{
    config(
        materialized=incremental_materialization(),
        unique_key='session_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
    )
}}

-- depends_on: {{ ref('fct_sessions') }}

with events as (

    select * from {{ ref('stg_landing__events') }}

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

final as (

    select
        session_id,
        fallback_topic as topic,
        count(*) as fallback_count,
        max(loaded_at) as last_loaded_at
    from fallbacks
    group by session_id, fallback_topic

)

select * from final

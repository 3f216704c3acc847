{{
    config(
        materialized='incremental',
        unique_key='session_date',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        pre_hook=[
            "{% if is_incremental() %}delete from {{ this }} where session_date in ("
            ~ "{{ affected_session_dates() }}){% endif %}"
        ],
    )
}}

-- depends_on: {{ ref('stg_landing__events') }}

with sessions as (

    select
        session_id,
        session_date,
        last_loaded_at
    from {{ ref('fct_sessions') }}
    {% if is_incremental() %}
    where session_date in ({{ affected_session_dates() }})
    {% endif %}

),

fallbacks as (

    select
        events.session_id,
        events.fallback_topic
    from {{ ref('stg_landing__events') }} as events
    where events.event_type = 'fallback_triggered'

),

final as (

    select
        sessions.session_date,
        fallbacks.fallback_topic as topic,
        count(*) as fallback_count,
        count(distinct sessions.session_id) as sessions,
        max(sessions.last_loaded_at) as last_loaded_at
    from fallbacks
    inner join sessions on fallbacks.session_id = sessions.session_id
    group by sessions.session_date, fallbacks.fallback_topic

)

select * from final

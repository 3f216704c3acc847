{{
    config(
        materialized=incremental_materialization(),
        unique_key='session_date',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        pre_hook="{{ delete_affected_session_dates('session_date') }}",
    )
}}

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

session_topics as (

    select * from {{ ref('fct_session_fallback_topics') }}

),

final as (

    select
        sessions.session_date,
        session_topics.topic,
        cast(sum(session_topics.fallback_count) as bigint) as fallback_count,
        count(*) as sessions,
        max(sessions.last_loaded_at) as last_loaded_at
    from session_topics
    inner join sessions on session_topics.session_id = sessions.session_id
    group by sessions.session_date, session_topics.topic

)

select * from final

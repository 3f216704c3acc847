{{
    config(
        materialized=incremental_materialization(),
        unique_key=['test_name', 'session_id'],
        incremental_strategy='delete+insert',
        on_schema_change='fail',
    )
}}

-- depends_on: {{ ref('fct_sessions') }}

with events as (

    select * from {{ ref('stg_landing__events') }}

),

exposure_events as (

    select
        session_id,
        event_id,
        test_name,
        variant,
        event_timestamp,
        loaded_at
    from events
    where
        event_type = 'experiment_exposure'
    {% if is_incremental() %}
            and session_id in ({{ sessions_rebuilt_since_watermark() }})
        {% endif %}

),

ranked as (

    select
        *,
        row_number() over (
            partition by test_name, session_id order by event_timestamp, event_id
        ) as exposure_order
    from exposure_events

),

per_session as (

    select
        test_name,
        session_id,
        count(distinct variant) as variants_seen,
        count(*) as exposure_count,
        max(loaded_at) as last_loaded_at
    from exposure_events
    group by test_name, session_id

),

final as (

    select
        ranked.test_name,
        ranked.session_id,
        ranked.variant,
        ranked.event_timestamp as first_exposed_at,
        cast(ranked.event_timestamp as date) as exposure_date,
        per_session.exposure_count,
        per_session.variants_seen > 1 as is_contaminated,
        per_session.last_loaded_at
    from ranked
    inner join per_session
        on
            ranked.test_name = per_session.test_name
            and ranked.session_id = per_session.session_id
    where ranked.exposure_order = 1

)

select * from final

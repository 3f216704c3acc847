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

final as (

    -- one pass per test and session: the first exposure by (event_timestamp, event_id), and
    -- how many exposures and variants the session saw
    select
        test_name,
        session_id,
        {{ first_by('variant', ['event_timestamp', 'event_id']) }} as variant,
        min(event_timestamp) as first_exposed_at,
        cast(min(event_timestamp) as date) as exposure_date,
        count(*) as exposure_count,
        count(distinct variant) > 1 as is_contaminated,
        max(loaded_at) as last_loaded_at
    from exposure_events
    group by test_name, session_id

)

select * from final

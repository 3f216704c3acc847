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

    select
        session_id,
        session_date,
        channel,
        coalesce(agent_version, 'unknown') as agent_version,
        last_loaded_at
    from {{ ref('fct_sessions') }}
    {% if is_incremental() %}
        where session_date in ({{ affected_session_dates() }})
    {% endif %}

),

session_samples as (

    select * from {{ ref('int_sessions__latency_samples') }}

),

final as (

    select
        sessions.session_date as metric_date,
        sessions.channel,
        sessions.agent_version,
        session_samples.latency_kind,
        session_samples.bucket,
        {{ ddsketch_bucket_value('session_samples.bucket') }} as bucket_value_ms,
        cast(sum(session_samples.samples) as bigint) as samples,
        max(sessions.last_loaded_at) as last_loaded_at
    from session_samples
    inner join sessions on session_samples.session_id = sessions.session_id
    group by
        sessions.session_date,
        sessions.channel,
        sessions.agent_version,
        session_samples.latency_kind,
        session_samples.bucket

)

select * from final

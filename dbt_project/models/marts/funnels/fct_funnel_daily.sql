{{
    config(
        materialized=incremental_materialization(),
        unique_key='session_date',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        pre_hook="{{ delete_affected_session_dates('session_date') }}",
    )
}}

{#- The funnel per day: its slices (fct_funnel_slices_daily) summed over channel and agent
    version, so both tables count a step's sessions the same way. -#}

-- depends_on: {{ ref('fct_sessions') }}

with slices as (

    select * from {{ ref('fct_funnel_slices_daily') }}
    {% if is_incremental() %}
        where session_date in ({{ affected_session_dates() }})
    {% endif %}

),

final as (

    select
        session_date,
        funnel_name,
        step_order,
        step_name,
        cast(sum(sessions_reached) as bigint) as sessions_reached,
        max(last_loaded_at) as last_loaded_at
    from slices
    group by session_date, funnel_name, step_order, step_name

)

select * from final

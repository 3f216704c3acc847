{{ config(materialized='table') }}

{#-
    The inference as of the end of each day since a test started, cumulative over the
    sessions first exposed up to that day; fct_ab_results_daily presents it.
-#}
with arm_stats as (

    select * from {{ ref('int_ab__arm_stats_daily') }}

),

arms as (

    select * from {{ ref('int_ab__arms') }}

),

metrics as (

    {{ ab_metric_rows() }}

),

test_days as (

    select
        test_name,
        min(exposure_date) as first_day,
        max(exposure_date) as last_day
    from arm_stats
    group by test_name

),

day_spine as (

    select
        test_days.test_name,
        cast({{ dbt.dateadd('day', 'day_offsets.day_offset', 'test_days.first_day') }} as date)
            as as_of_date
    from test_days
    inner join (
        {#- enough offsets for a test of up to ten years -#}
        {{ day_offsets(3660) }}
    ) as day_offsets
        on day_offsets.day_offset <= {{ dbt.datediff('test_days.first_day', 'test_days.last_day', 'day') }}

),

grid as (

    select
        day_spine.as_of_date,
        arms.test_name,
        arms.variant,
        arms.weight,
        arms.is_control,
        metrics.metric
    from day_spine
    inner join arms on day_spine.test_name = arms.test_name
    cross join metrics

),

ab_input as (

    select
        grid.as_of_date,
        grid.test_name,
        grid.variant,
        grid.metric,
        coalesce(sum(arm_stats.n), 0) as n,
        coalesce(sum(arm_stats.sum_value), 0.0e0) as sum_value,
        coalesce(sum(arm_stats.sum_squares), 0.0e0) as sum_squares,
        coalesce(sum(arm_stats.exposed_sessions), 0) as exposed_sessions,
        grid.weight,
        grid.is_control
    from grid
    left join arm_stats
        on
            grid.test_name = arm_stats.test_name
            and grid.variant = arm_stats.variant
            and grid.metric = arm_stats.metric
            and arm_stats.exposure_date <= grid.as_of_date
    group by
        grid.as_of_date, grid.test_name, grid.variant, grid.metric, grid.weight, grid.is_control

),

{{ ab_inference('ab_input', ['as_of_date']) }},

final as (

    select * from inference

)

select * from final

{#-
    The results as of the end of each day since a test started: cumulative over sessions
    first exposed up to that day, with the running minimum of the always-valid p-value (a
    verdict that only ever strengthens, safe to read daily).
-#}
with session_metrics as (

    select * from {{ ref('int_ab__session_metrics') }}

),

arms as (

    select * from {{ ref('int_ab__arms') }}

),

test_days as (

    select
        test_name,
        min(exposure_date) as first_day,
        max(exposure_date) as last_day
    from {{ ref('fct_ab_exposures') }}
    group by test_name

),

day_spine as (

    select
        test_days.test_name,
        cast({{ dbt.dateadd('day', 'day_offsets.day_offset', 'test_days.first_day') }} as date)
            as metric_date
    from test_days
    inner join (
        {#- enough offsets for a test of up to ten years -#}
        {{ day_offsets(3660) }}
    ) as day_offsets
        on day_offsets.day_offset <= {{ dbt.datediff('test_days.first_day', 'test_days.last_day', 'day') }}

),

metrics as (

    select 'conversion_rate' as metric
    union all select 'resolution_rate'
    union all select 'avg_satisfaction'
    union all select 'user_messages'

),

daily_sums as (

    select
        test_name,
        variant,
        metric,
        exposure_date,
        count(*) as n,
        sum(metric_value) as sum_value,
        sum(metric_value * metric_value) as sum_squares
    from session_metrics
    group by test_name, variant, metric, exposure_date

),

exposed_daily as (

    select
        test_name,
        variant,
        exposure_date,
        count(*) as exposed_sessions
    from {{ ref('fct_ab_exposures') }}
    where not is_contaminated
    group by test_name, variant, exposure_date

),

grid as (

    select
        day_spine.metric_date,
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
        grid.metric_date,
        grid.test_name,
        grid.variant,
        grid.metric,
        coalesce(sum(daily_sums.n), 0) as n,
        coalesce(sum(daily_sums.sum_value), 0.0e0) as sum_value,
        coalesce(sum(daily_sums.sum_squares), 0.0e0) as sum_squares,
        coalesce(max(exposed_totals.exposed_sessions), 0) as exposed_sessions,
        grid.weight,
        grid.is_control
    from grid
    left join daily_sums
        on
            grid.test_name = daily_sums.test_name
            and grid.variant = daily_sums.variant
            and grid.metric = daily_sums.metric
            and daily_sums.exposure_date <= grid.metric_date
    left join (
        select
            grid_days.metric_date,
            exposed_daily.test_name,
            exposed_daily.variant,
            sum(exposed_daily.exposed_sessions) as exposed_sessions
        from (select distinct metric_date, test_name from day_spine) as grid_days
        inner join exposed_daily
            on
                grid_days.test_name = exposed_daily.test_name
                and exposed_daily.exposure_date <= grid_days.metric_date
        group by grid_days.metric_date, exposed_daily.test_name, exposed_daily.variant
    ) as exposed_totals
        on
            grid.metric_date = exposed_totals.metric_date
            and grid.test_name = exposed_totals.test_name
            and grid.variant = exposed_totals.variant
    group by
        grid.metric_date, grid.test_name, grid.variant, grid.metric, grid.weight, grid.is_control

),

{{ ab_inference('ab_input', ['metric_date']) }},

final as (

    select
        metric_date,
        test_name,
        variant,
        metric,
        is_control,
        exposed_sessions,
        units,
        mean,
        ci_low,
        ci_high,
        abs_diff,
        p_value,
        rel_lift,
        rel_lift_ci_low,
        rel_lift_ci_high,
        always_valid_p_value,
        min(always_valid_p_value) over (
            partition by test_name, variant, metric
            order by metric_date
            rows between unbounded preceding and current row
        ) as always_valid_p_value_running_min,
        enough_data,
        srm_p_value
    from inference

)

select * from final

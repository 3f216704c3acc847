{#- Sufficient statistics per arm and metric over the whole test: everything the inference needs. -#}
with arms as (

    select * from {{ ref('int_ab__arms') }}

),

metrics as (

    {{ ab_metric_rows() }}

),

arm_stats as (

    select
        test_name,
        variant,
        metric,
        sum(n) as n,
        sum(sum_value) as sum_value,
        sum(sum_squares) as sum_squares,
        sum(exposed_sessions) as exposed_sessions
    from {{ ref('int_ab__arm_stats_daily') }}
    group by test_name, variant, metric

),

final as (

    select
        arms.test_name,
        arms.variant,
        metrics.metric,
        cast(coalesce(arm_stats.n, 0) as bigint) as n,
        coalesce(arm_stats.sum_value, 0.0e0) as sum_value,
        coalesce(arm_stats.sum_squares, 0.0e0) as sum_squares,
        cast(coalesce(arm_stats.exposed_sessions, 0) as bigint) as exposed_sessions
    from arms
    cross join metrics
    left join arm_stats
        on
            arms.test_name = arm_stats.test_name
            and arms.variant = arm_stats.variant
            and metrics.metric = arm_stats.metric

)

select * from final

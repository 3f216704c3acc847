{#- Sufficient statistics per arm and metric: everything the inference needs. -#}
with arms as (

    select * from {{ ref('int_ab__arms') }}

),

metrics as (

    select 'conversion_rate' as metric
    union all
    select 'resolution_rate'
    union all
    select 'avg_satisfaction'
    union all
    select 'user_messages'

),

session_metrics as (

    select * from {{ ref('int_ab__session_metrics') }}

),

exposed as (

    select
        test_name,
        variant,
        count(*) as exposed_sessions
    from {{ ref('fct_ab_exposures') }}
    where not is_contaminated
    group by test_name, variant

),

sums as (

    select
        test_name,
        variant,
        metric,
        count(*) as n,
        sum(metric_value) as sum_value,
        sum(metric_value * metric_value) as sum_squares
    from session_metrics
    group by test_name, variant, metric

),

final as (

    select
        arms.test_name,
        arms.variant,
        metrics.metric,
        coalesce(sums.n, 0) as n,
        coalesce(sums.sum_value, 0.0e0) as sum_value,
        coalesce(sums.sum_squares, 0.0e0) as sum_squares,
        coalesce(exposed.exposed_sessions, 0) as exposed_sessions
    from arms
    cross join metrics
    left join sums
        on
            arms.test_name = sums.test_name
            and arms.variant = sums.variant
            and metrics.metric = sums.metric
    left join exposed
        on
            arms.test_name = exposed.test_name
            and arms.variant = exposed.variant

)

select * from final

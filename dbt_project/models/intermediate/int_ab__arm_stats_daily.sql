{{ config(materialized='table') }}

{#- A table: read twice (whole test and daily trajectory), and kept out of Spark's larger plans. -#}
{#-
    The per-arm sufficient statistics of every test, metric and first-exposure day: exposed
    (uncontaminated) sessions, and n, sum and sum of squares of the metric over the sessions
    where it is defined. The whole-test statistics and the daily trajectory both sum these.
-#}
with exposures as (

    select * from {{ ref('fct_ab_exposures') }}
    where not is_contaminated

),

session_metrics as (

    select * from {{ ref('int_ab__session_metrics') }}

),

metrics as (

    {{ ab_metric_rows() }}

),

exposed as (

    select
        test_name,
        variant,
        exposure_date,
        count(*) as exposed_sessions
    from exposures
    group by test_name, variant, exposure_date

),

sums as (

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

final as (

    select
        exposed.test_name,
        exposed.variant,
        metrics.metric,
        exposed.exposure_date,
        exposed.exposed_sessions,
        coalesce(sums.n, 0) as n,
        coalesce(sums.sum_value, 0.0e0) as sum_value,
        coalesce(sums.sum_squares, 0.0e0) as sum_squares
    from exposed
    cross join metrics
    left join sums
        on
            exposed.test_name = sums.test_name
            and exposed.variant = sums.variant
            and exposed.exposure_date = sums.exposure_date
            and metrics.metric = sums.metric

)

select * from final

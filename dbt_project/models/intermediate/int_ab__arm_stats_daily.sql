{{
    config(
        materialized=incremental_materialization(),
        unique_key='exposure_date',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        pre_hook="{{ delete_exposure_dates_to_rebuild() }}",
    )
}}

{#- Materialized, not a view: read twice (whole test and daily trajectory), and kept out of
    Spark's larger plans. -#}
{#-
    The per-arm sufficient statistics of every test, metric and first-exposure day: exposed
    (uncontaminated) sessions, and n, sum and sum of squares of the metric over the sessions
    where it is defined. The whole-test statistics and the daily trajectory both sum these.
    Rebuilt for the days a rebuilt session reaches (macros/statistics/ab_metrics.sql).
-#}

with exposures as (

    select * from {{ ref('fct_ab_exposures') }}
    where
        not is_contaminated
    {% if is_incremental() %}
            and exposure_date in (
                {{ exposure_dates_to_rebuild(
                    'select distinct exposure_date as candidate_date from ' ~ ref('fct_ab_exposures')
                ) }}
            )
        {% endif %}

),

sessions as (

    select * from {{ ref('fct_sessions') }}

),

exposed_sessions as (

    select
        exposures.test_name,
        exposures.variant,
        exposures.exposure_date,
        sessions.*
    from exposures
    inner join sessions on exposures.session_id = sessions.session_id

),

session_metrics as (

    -- one row per exposed session and metric of ab_metrics(), where the metric is defined
    {% for metric in ab_metrics() %}
    select
        sessions.test_name,
        sessions.variant,
        sessions.exposure_date,
        '{{ metric.name }}' as metric,
        {{ metric.value }} as metric_value
    from exposed_sessions as sessions
    where {{ metric.value }} is not null
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

metrics as (

    {{ ab_metric_rows() }}

),

exposed as (

    select
        test_name,
        variant,
        exposure_date,
        count(*) as exposed_sessions,
        max(last_loaded_at) as last_loaded_at
    from exposed_sessions
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
        coalesce(sums.sum_squares, 0.0e0) as sum_squares,
        exposed.last_loaded_at,
        {{ ab_definition_version() }} as definition_version
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

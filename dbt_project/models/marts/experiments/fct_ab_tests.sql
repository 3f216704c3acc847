{#- One row per test: exposure volume, contamination and sample-ratio mismatch. -#}
with exposures as (

    select * from {{ ref('fct_ab_exposures') }}

),

arms as (

    select * from {{ ref('int_ab__arms') }}

),

results as (

    select * from {{ ref('fct_ab_results') }}

),

exposure_totals as (

    select
        test_name,
        count(*) as exposed_sessions,
        count(case when is_contaminated then 1 end) as contaminated_sessions,
        min(first_exposed_at) as first_exposed_at,
        max(first_exposed_at) as last_exposed_at
    from exposures
    group by test_name

),

arm_totals as (

    select
        test_name,
        count(case when weight is not null then 1 end) as configured_arms,
        count(case when weight is null then 1 end) as unexpected_variants,
        max(case when is_control then variant end) as control_variant,
        bool_and(is_configured) as is_configured
    from arms
    group by test_name

),

srm as (

    select distinct
        test_name,
        srm_p_value
    from results

),

final as (

    select
        exposure_totals.test_name,
        arm_totals.control_variant,
        arm_totals.configured_arms,
        arm_totals.unexpected_variants,
        coalesce(arm_totals.is_configured, false) as is_configured,
        exposure_totals.exposed_sessions,
        exposure_totals.contaminated_sessions,
        {{ safe_divide('exposure_totals.contaminated_sessions', 'exposure_totals.exposed_sessions') }}
            as contamination_rate,
        srm.srm_p_value,
        coalesce(srm.srm_p_value < {{ float_var('ab_srm_alpha') }}, false) as is_srm_mismatch,
        exposure_totals.first_exposed_at,
        exposure_totals.last_exposed_at
    from exposure_totals
    left join arm_totals on exposure_totals.test_name = arm_totals.test_name
    left join srm on exposure_totals.test_name = srm.test_name

)

select * from final

with variant_stats as (

    select * from {{ ref('fct_ab_variant_stats') }}

),

arms as (

    select * from {{ ref('int_ab__arms') }}

),

ab_input as (

    select
        variant_stats.test_name,
        variant_stats.variant,
        variant_stats.metric,
        variant_stats.n,
        variant_stats.sum_value,
        variant_stats.sum_squares,
        variant_stats.exposed_sessions,
        arms.weight,
        arms.is_control
    from variant_stats
    inner join arms
        on
            variant_stats.test_name = arms.test_name
            and variant_stats.variant = arms.variant

),

{{ ab_inference('ab_input') }},

final as (

    select
        test_name,
        variant,
        metric,
        is_control,
        weight,
        exposed_sessions,
        units,
        mean,
        variance,
        ci_low,
        ci_high,
        abs_diff,
        p_value,
        abs_diff_ci_low,
        abs_diff_ci_high,
        rel_lift,
        rel_lift_ci_low,
        rel_lift_ci_high,
        is_significant,
        chance_to_win,
        always_valid_p_value,
        minimum_detectable_effect,
        enough_data,
        srm_p_value,
        srm_p_value < {{ float_var('ab_srm_alpha') }} as is_srm_mismatch
    from inference

)

select * from final

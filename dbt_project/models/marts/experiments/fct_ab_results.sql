with inference as (

    select * from {{ ref('int_ab__inference') }}

),

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

{#-
    The results as of the end of each day since a test started, with the running minimum of
    the always-valid p-value (a verdict that only ever strengthens, safe to read daily).
-#}
with inference as (

    select * from {{ ref('int_ab__inference_daily') }}

),

final as (

    select
        as_of_date,
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
            order by as_of_date
            rows between unbounded preceding and current row
        ) as always_valid_p_value_running_min,
        enough_data,
        srm_p_value
    from inference

)

select * from final

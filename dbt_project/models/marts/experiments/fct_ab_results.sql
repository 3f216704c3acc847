with inference as (

    select * from {{ ref('int_ab__inference') }}

),

metrics as (

    {{ ab_metric_rows() }}

),

final as (

    select
        inference.test_name,
        inference.variant,
        inference.metric,
        inference.is_control,
        inference.weight,
        inference.exposed_sessions,
        inference.units,
        inference.mean,
        inference.variance,
        inference.ci_low,
        inference.ci_high,
        inference.abs_diff,
        inference.p_value,
        inference.abs_diff_ci_low,
        inference.abs_diff_ci_high,
        inference.rel_lift,
        inference.rel_lift_ci_low,
        inference.rel_lift_ci_high,
        inference.is_significant,
        inference.chance_to_win,
        inference.always_valid_p_value,
        inference.minimum_detectable_effect,
        inference.enough_data,
        inference.additional_sessions_per_arm,
        metrics.is_higher_better,
        inference.srm_p_value,
        inference.srm_p_value < {{ float_var('ab_srm_alpha') }} as is_srm_mismatch
    from inference
    inner join metrics on inference.metric = metrics.metric

)

select * from final

{#-
    Inference for A/B tests from per-arm sufficient statistics, as a chain of CTEs ending in
    one named `inference`. The input CTE has the partition columns (none, or a date for the
    daily trajectory), test_name, variant, metric, n, sum_value, sum_squares,
    exposed_sessions, weight and is_control. Conventions follow GrowthBook's engine:
    binary metrics use p(1 - p), others the sample variance; Welch's t-test against the
    control arm; the relative lift's interval by the delta method with the same degrees of
    freedom; mSPRT's always-valid p-value; a chi-square test of sample-ratio mismatch.
-#}
{% macro ab_inference(input_cte, partition_by=[]) -%}
{%- set alpha = 'cast(' ~ var('ab_alpha') ~ ' as double)' -%}
{%- set keys = partition_by + ['test_name'] -%}
{%- set join_keys = [] -%}
{%- for key in keys -%}{%- do join_keys.append('treatment.' ~ key ~ ' = control.' ~ key) -%}{%- endfor -%}
ab_constants as (
    select
        {{ normal_quantile_start('1.0e0 - ' ~ alpha ~ ' / 2.0e0') }} as z_half_start,
        {{ normal_quantile_start('0.8e0') }} as z_power_start
),

ab_critical as (
    select
        {{ normal_quantile_refine('z_half_start', '1.0e0 - ' ~ alpha ~ ' / 2.0e0') }} as z_half,
        {{ normal_quantile_refine('z_power_start', '0.8e0') }} as z_power
    from ab_constants
),

ab_moments as (
    select
        *,
        case when n > 0 then sum_value / n end as mean,
        case
            when n = 0 then null
            when metric in {{ ab_metric_names(binary_only=true) }}
                then (sum_value / n) * (1.0e0 - sum_value / n)
            when n > 1 then (sum_squares - sum_value * sum_value / n) / (n - 1.0e0)
        end as variance
    from {{ input_cte }}
),

ab_srm as (
    select
        {% for key in keys %}{{ key }},{% endfor %}
        count(*) as arm_count,
        sum(
            power(exposed_sessions - total_sessions * weight / total_weight, 2)
            / nullif(total_sessions * weight / total_weight, 0.0e0)
        ) as srm_chi_square
    from (
        select
            *,
            sum(exposed_sessions) over (partition by {{ keys | join(', ') }}) as total_sessions,
            sum(weight) over (partition by {{ keys | join(', ') }}) as total_weight
        from ab_moments
        where metric = '{{ ab_metrics()[0].name }}' and weight is not null
    ) as weighted_arms
    group by {{ keys | join(', ') }}
),

ab_srm_parts as (
    select
        *,
        sqrt(srm_chi_square) as srm_sqrt
    from ab_srm
),

ab_srm_tail as (
    select
        *,
        {{ normal_cdf('-srm_sqrt') }} as srm_normal_tail
    from ab_srm_parts
),

ab_enough as (
    select
        {% for key in keys %}{{ key }},{% endfor %}
        metric,
        min(
            case
                {%- for metric in ab_metrics() if metric.enough == 'successes' %}
                when metric = '{{ metric.name }}' then sum_value
                {%- endfor %}
                else exposed_sessions
            end
        ) as smallest_arm,
        sum(sum_value) / nullif(sum(n), 0.0e0) as pooled_mean
    from ab_moments
    where weight is not null
    group by {{ keys | join(', ') }}, metric
),

ab_paired as (
    select
        treatment.*,
        control.mean as control_mean,
        control.variance as control_variance,
        control.n as control_n,
        case when not treatment.is_control then treatment.mean - control.mean end as abs_diff,
        case
            when not treatment.is_control
                then sqrt(treatment.variance / treatment.n + control.variance / control.n)
        end as se,
        case
            when not treatment.is_control
                then power(treatment.variance / treatment.n + control.variance / control.n, 2)
                / nullif(
                    power(treatment.variance / treatment.n, 2) / nullif(treatment.n - 1.0e0, 0.0e0)
                    + power(control.variance / control.n, 2) / nullif(control.n - 1.0e0, 0.0e0),
                    0.0e0
                )
        end as welch_df,
        case
            when not treatment.is_control
                then (treatment.mean - control.mean)
                / nullif(sqrt(treatment.variance / treatment.n + control.variance / control.n), 0.0e0)
        end as t_statistic
    from ab_moments as treatment
    left join ab_moments as control
        on
            {{ join_keys | join(' and ') }}
            and treatment.metric = control.metric
            and control.is_control
),

ab_t_start as (
    select
        ab_paired.*,
        ab_critical.z_half,
        ab_critical.z_power,
        {{ t_quantile_start('ab_critical.z_half', '1.0e0 - ' ~ alpha ~ ' / 2.0e0', 'ab_paired.welch_df') }}
            as t_half_0,
        {{ t_pdf_log_constant('ab_paired.welch_df') }} as t_log_constant
    from ab_paired
    cross join ab_critical
),
{#- Newton steps for t(nu, 1 - alpha/2), each stage in its own column (see distributions). -#}
{% for step in range(1, 5) %}
{%- set x = 't_half_' ~ (step - 1) %}
ab_t_step_{{ step }}_angle as (
    select
        *,
        {{ t_tail_angle(x, 'welch_df') }} as theta_{{ step }},
        {{ t_tail_log_term(x, 'welch_df') }} as log_term_{{ step }}
    from {{ 'ab_t_start' if step == 1 else 'ab_t_step_' ~ (step - 1) }}
),

ab_t_step_{{ step }}_deviate as (
    select
        *,
        {{ t_tail_normal_deviate('log_term_' ~ step, 'welch_df') }} as deviate_{{ step }}
    from ab_t_step_{{ step }}_angle
),

ab_t_step_{{ step }}_tail as (
    select
        *,
        {{ t_tail_from_parts('theta_' ~ step, 'deviate_' ~ step, 'welch_df') }} as tail_{{ step }}
    from ab_t_step_{{ step }}_deviate
),

ab_t_step_{{ step }} as (
    select
        *,
        case when welch_df > 0.0e0 then
            {{ x }} - (
                case when {{ x }} >= 0.0e0 then 1.0e0 - 0.5e0 * tail_{{ step }} else 0.5e0 * tail_{{ step }} end
                - (1.0e0 - {{ alpha }} / 2.0e0)
            ) / {{ t_pdf(x, 'welch_df', 't_log_constant') }}
        end as t_half_{{ step }}
    from ab_t_step_{{ step }}_tail
),
{% endfor %}

ab_p_angle as (
    select
        *,
        {{ t_tail_angle('t_statistic', 'welch_df') }} as p_theta,
        {{ t_tail_log_term('t_statistic', 'welch_df') }} as p_log_term
    from ab_t_step_4
),

ab_p_deviate as (
    select
        *,
        {{ t_tail_normal_deviate('p_log_term', 'welch_df') }} as p_deviate
    from ab_p_angle
),

ab_p_values as (
    select
        *,
        {{ t_tail_from_parts('p_theta', 'p_deviate', 'welch_df') }} as two_sided_p
    from ab_p_deviate
),

ab_tested as (
    select
        *,
        t_half_4 as t_half,
        sqrt(
            variance / (n * control_mean * control_mean)
            + control_variance * mean * mean / (control_n * power(control_mean, 4))
        ) as rel_se,
        (-2.0e0 * ln({{ alpha }}) + ln(1.0e0 - 2.0e0 * ln({{ alpha }})))
            / cast({{ var('ab_msprt_n_star') }} as double) as rho_squared
    from ab_p_values
),

inference as (
    select
        {% for key in partition_by %}ab_tested.{{ key }},{% endfor %}
        ab_tested.test_name,
        ab_tested.variant,
        ab_tested.metric,
        ab_tested.is_control,
        ab_tested.weight,
        ab_tested.exposed_sessions,
        ab_tested.n as units,
        ab_tested.sum_value,
        ab_tested.mean,
        ab_tested.variance,
        ab_tested.mean - ab_tested.z_half * sqrt(ab_tested.variance / ab_tested.n) as ci_low,
        ab_tested.mean + ab_tested.z_half * sqrt(ab_tested.variance / ab_tested.n) as ci_high,
        ab_tested.abs_diff,
        ab_tested.se as abs_diff_se,
        ab_tested.welch_df,
        ab_tested.two_sided_p as p_value,
        ab_tested.abs_diff - ab_tested.t_half * ab_tested.se as abs_diff_ci_low,
        ab_tested.abs_diff + ab_tested.t_half * ab_tested.se as abs_diff_ci_high,
        ab_tested.abs_diff / nullif(ab_tested.control_mean, 0.0e0) as rel_lift,
        ab_tested.abs_diff / nullif(ab_tested.control_mean, 0.0e0)
            - ab_tested.t_half * ab_tested.rel_se as rel_lift_ci_low,
        ab_tested.abs_diff / nullif(ab_tested.control_mean, 0.0e0)
            + ab_tested.t_half * ab_tested.rel_se as rel_lift_ci_high,
        ab_tested.two_sided_p < {{ alpha }} as is_significant,
        {{ normal_cdf('ab_tested.t_statistic') }} as chance_to_win,
        case when not ab_tested.is_control then least(
            1.0e0,
            sqrt((ab_tested.n + ab_tested.control_n) * ab_tested.rho_squared + 1.0e0)
            * exp(
                -ab_tested.rho_squared * (ab_tested.n + ab_tested.control_n)
                * ab_tested.t_statistic * ab_tested.t_statistic
                / (2.0e0 * ((ab_tested.n + ab_tested.control_n) * ab_tested.rho_squared + 1.0e0))
            )
        ) end as always_valid_p_value,
        (ab_tested.z_half + ab_tested.z_power) * ab_tested.se as minimum_detectable_effect,
        coalesce(
            ab_enough.smallest_arm
            >= case
                {%- for metric in ab_metrics() if metric.enough == 'successes' %}
                when ab_tested.metric = '{{ metric.name }}' then {{ var('ab_min_successes') }}
                {%- endfor %}
                else {{ var('ab_min_exposed_sessions') }}
            end,
            false
        ) as enough_data,
        {#- how many more sessions each arm needs before enough_data: the missing successes
            at the pooled rate, or the missing exposed sessions -#}
        case
            {%- for metric in ab_metrics() if metric.enough == 'successes' %}
            when ab_tested.metric = '{{ metric.name }}'
                then ceil(
                    greatest({{ var('ab_min_successes') }} - ab_enough.smallest_arm, 0.0e0)
                    / nullif(ab_enough.pooled_mean, 0.0e0)
                )
            {%- endfor %}
            else greatest({{ var('ab_min_exposed_sessions') }} - ab_enough.smallest_arm, 0.0e0)
        end as additional_sessions_per_arm,
        ab_srm.arm_count as srm_arms,
        {{ chi_square_sf_from_parts(
            'ab_srm.srm_chi_square', 'ab_srm.arm_count - 1', 'ab_srm.srm_sqrt', 'ab_srm.srm_normal_tail'
        ) }} as srm_p_value
    from ab_tested
    left join ab_enough
        on
            {% for key in keys %}ab_tested.{{ key }} = ab_enough.{{ key }} and {% endfor %}
            ab_tested.metric = ab_enough.metric
    left join ab_srm_tail as ab_srm
        on
            {% for key in keys %}ab_tested.{{ key }} = ab_srm.{{ key }}{% if not loop.last %} and {% endif %}{% endfor %}
)
{%- endmacro %}

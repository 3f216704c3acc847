{#-
    One row per uncontaminated exposed session, test and A/B metric with the session's value,
    for every metric of ab_metrics() defined for the session.
-#}
with exposures as (

    select * from {{ ref('fct_ab_exposures') }}
    where not is_contaminated

),

sessions as (

    select * from {{ ref('fct_sessions') }}

),

valued as (
    {% for metric in ab_metrics() %}
    select
        exposures.test_name,
        exposures.variant,
        exposures.exposure_date,
        exposures.session_id,
        '{{ metric.name }}' as metric,
        {{ metric.value }} as metric_value
    from exposures
    inner join sessions on exposures.session_id = sessions.session_id
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

final as (

    select *
    from valued
    where metric_value is not null

)

select * from final

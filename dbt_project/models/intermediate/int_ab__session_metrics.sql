{#-
    One row per uncontaminated exposed session, test and metric with the session's value:
    conversion and resolution as 0/1 for every exposed session, user messages for every
    exposed session, satisfaction for rated sessions only.
-#}
with exposures as (

    select * from {{ ref('fct_ab_exposures') }}
    where not is_contaminated

),

sessions as (

    select * from {{ ref('fct_sessions') }}

),

joined as (

    select
        exposures.test_name,
        exposures.variant,
        exposures.exposure_date,
        exposures.session_id,
        sessions.is_converted,
        sessions.is_escalated,
        sessions.user_messages,
        sessions.rating
    from exposures
    inner join sessions on exposures.session_id = sessions.session_id

),

final as (

    select
        test_name,
        variant,
        exposure_date,
        session_id,
        'conversion_rate' as metric,
        case when is_converted then 1.0e0 else 0.0e0 end as metric_value
    from joined
    union all
    select
        test_name,
        variant,
        exposure_date,
        session_id,
        'resolution_rate' as metric,
        case when is_escalated then 0.0e0 else 1.0e0 end as metric_value
    from joined
    union all
    select
        test_name,
        variant,
        exposure_date,
        session_id,
        'user_messages' as metric,
        cast(user_messages as double) as metric_value
    from joined
    union all
    select
        test_name,
        variant,
        exposure_date,
        session_id,
        'avg_satisfaction' as metric,
        cast(rating as double) as metric_value
    from joined
    where rating is not null

)

select * from final

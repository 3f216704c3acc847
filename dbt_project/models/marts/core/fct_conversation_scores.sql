{{
    config(
        materialized=incremental_materialization(),
        unique_key='session_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
    )
}}

with sessions as (

    select * from {{ ref('fct_sessions') }}
    {% if is_incremental() %}
    where {{ loaded_after_watermark('last_loaded_at') }}
    {% endif %}

),

components as (

    select
        session_id,
        session_date,
        last_loaded_at,
        case when is_escalated then 0.0e0 else 100.0e0 end as resolution_score,
        case
            when user_messages = 0 then null
            when user_messages <= {{ var('efficiency_target_messages') }} then 100.0e0
            else greatest(
                0.0e0,
                100.0e0 - {{ float_var('efficiency_penalty_per_message') }}
                * (user_messages - {{ var('efficiency_target_messages') }})
            )
        end as efficiency_score,
        case when rating is not null then (rating - 1) * 25.0e0 end as sentiment_score,
        case
            when is_converted or flows_completed > 0 then 100.0e0 else 0.0e0
        end as goal_completion_score
    from sessions

),

weighted as (

    select
        *,
        {{ float_var('score_weight_resolution') }} * resolution_score
        + coalesce({{ float_var('score_weight_efficiency') }} * efficiency_score, 0.0e0)
        + coalesce({{ float_var('score_weight_sentiment') }} * sentiment_score, 0.0e0)
        + {{ float_var('score_weight_goal_completion') }} * goal_completion_score
            as weighted_sum,
        {{ float_var('score_weight_resolution') }}
        + case
            when efficiency_score is not null
                then {{ float_var('score_weight_efficiency') }}
            else 0.0e0
        end
        + case
            when sentiment_score is not null
                then {{ float_var('score_weight_sentiment') }}
            else 0.0e0
        end
        + {{ float_var('score_weight_goal_completion') }} as weight_present
    from components

),

means as (

    select
        *,
        {{ safe_divide('weighted_sum', 'weight_present') }} as weighted_mean
    from weighted

),

final as (

    select
        session_id,
        session_date,
        resolution_score,
        efficiency_score,
        sentiment_score,
        goal_completion_score,
        -- a weighted mean of scores in [0, 100] is in [0, 100]; rounding can put it an ulp
        -- outside (weights 0.3, 0.3, 0.1, 0.3: 100.00000000000001)
        case
            when weighted_mean > 100.0e0 then 100.0e0
            when weighted_mean < 0.0e0 then 0.0e0
            else weighted_mean
        end as overall_score,
        last_loaded_at
    from means

)

select * from final

{{ config(materialized='table') }}

{#- The inference over the whole test (macros/statistics), from each arm's sufficient
    statistics; fct_ab_results presents it. -#}
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

    select * from inference

)

select * from final

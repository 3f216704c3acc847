{{ config(materialized='table') }}

{#- A table, not a view: Spark fails to ship this model's union to tasks of the larger plans that read it. -#}
{#-
    Arms of every test: the configured ones from the seed, and for tests missing there the
    observed variants with equal weights, `control` (else the alphabetically first) as
    control. Variants observed but not configured are kept (weight NULL) so that a test can
    flag them.
-#}
with configured as (

    select * from {{ ref('experiments') }}

),

observed as (

    select distinct
        test_name,
        variant
    from {{ ref('fct_ab_exposures') }}

),

unconfigured_tests as (

    select distinct observed.test_name
    from observed
    where observed.test_name not in (select configured.test_name from configured)

),

fallback_arms as (

    select
        observed.test_name,
        observed.variant,
        1.0e0 as weight,
        observed.variant = coalesce(
            max(case when observed.variant = 'control' then observed.variant end)
                over (partition by observed.test_name),
            min(observed.variant) over (partition by observed.test_name)
        ) as is_control,
        false as is_configured
    from observed
    inner join unconfigured_tests on observed.test_name = unconfigured_tests.test_name

),

unexpected_arms as (

    select
        observed.test_name,
        observed.variant,
        cast(null as double) as weight,
        false as is_control,
        false as is_configured
    from observed
    where
        observed.test_name in (select configured.test_name from configured)
        and not exists (
            select 1
            from configured
            where
                configured.test_name = observed.test_name
                and configured.variant = observed.variant
        )

),

final as (

    select
        test_name,
        variant,
        cast(weight as double) as weight,
        is_control,
        true as is_configured
    from configured
    union all
    select * from fallback_arms
    union all
    select * from unexpected_arms

)

select * from final

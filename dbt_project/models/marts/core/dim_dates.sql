{#- One row per day, the time spine MetricFlow joins metrics to (2000 to 2099). -#}
with day_offsets as (

    {{ day_offsets(36524) }}

),

final as (

    select
        cast({{ dbt.dateadd('day', 'day_offsets.day_offset', "cast('2000-01-01' as date)") }} as date)
            as date_day
    from day_offsets

)

select * from final

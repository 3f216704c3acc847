{#- Weekly cohorts: the users whose first session fell in a week (starting Monday) and how
    many of them had a session each week after, up to the week of the latest session. Counts
    the users' active weeks (int_users__active_weeks, kept per user), not their sessions. -#}
with active_weeks as (

    select * from {{ ref('int_users__active_weeks') }}

),

activity as (

    select
        cohort_week,
        week_number,
        count(*) as active_users
    from active_weeks
    group by cohort_week, week_number

),

cohorts as (

    {#- every user is active in their cohort's week -#}
    select
        cohort_week,
        active_users as cohort_users
    from activity
    where week_number = 0

),

latest as (

    select max(active_week) as latest_week
    from active_weeks

),

week_numbers as (

    {{ day_offsets(520) }}

),

grid as (

    select
        cohorts.cohort_week,
        cohorts.cohort_users,
        week_numbers.day_offset as week_number
    from cohorts
    cross join latest
    inner join week_numbers
        on week_numbers.day_offset * 7 <= {{ dbt.datediff('cohorts.cohort_week', 'latest.latest_week', 'day') }}

),

final as (

    select
        grid.cohort_week,
        grid.week_number,
        grid.cohort_users,
        coalesce(activity.active_users, 0) as active_users
    from grid
    left join activity
        on
            grid.cohort_week = activity.cohort_week
            and grid.week_number = activity.week_number

)

select * from final

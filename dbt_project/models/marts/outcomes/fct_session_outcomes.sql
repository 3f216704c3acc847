{{
    config(
        materialized=incremental_materialization(),
        unique_key='session_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
    )
}}

{%- set evidence = var('resolution_evidence') -%}

{#- fct_sessions is read three times, each time for what that step needs: one CTE read three
    times is materialized whole by DuckDB, every column of every session in history. -#}

with sessions as (

    select
        session_id,
        user_key,
        session_date,
        session_started_at,
        session_ended_at,
        is_escalated,
        is_converted,
        flows_completed,
        rating,
        has_thumbs_up,
        last_loaded_at
    from {{ ref('fct_sessions') }}

),

latest as (

    -- verification waits for time to pass in the data, not on the clock
    select max(session_ended_at) as latest_event_at
    from {{ ref('fct_sessions') }}

),

scope as (

    select sessions.*
    from sessions
    {% if is_incremental() %}
        where sessions.session_id in (
            {{ sessions_with_changed_outcomes(this, 'select distinct definition_version from ' ~ this) }}
        )
    {% endif %}

),

later_sessions as (

    -- only the sessions of the users in scope can be their recontacts: joining these alone
    -- keeps the join's hash table off the whole history
    select
        history.session_id,
        history.user_key,
        history.session_started_at
    from {{ ref('fct_sessions') }} as history
    where history.user_key in (select distinct scope.user_key from scope)

),

recontacts as (

    -- another session of the same user, started after this one started and no later than the
    -- window after this one ended
    select
        scope.session_id,
        count(later.session_id) > 0 as has_recontact
    from scope
    left join later_sessions as later
        on
            scope.user_key = later.user_key
            and scope.session_id <> later.session_id
            and scope.session_started_at < later.session_started_at
            and later.session_started_at <= {{ recontact_window_end('scope.session_ended_at') }}
    group by scope.session_id

),

evidence as (

    select
        scope.*,
        not scope.is_escalated as is_contained,
        case
            when scope.is_escalated then null
            {% if 'conversion' in evidence %}
            when scope.is_converted then 'conversion'
            {% endif %}
            {% if 'flow_completed' in evidence %}
            when scope.flows_completed > 0 then 'flow_completed'
            {% endif %}
            {% if 'positive_feedback' in evidence %}
            when scope.rating >= {{ var('positive_rating_min') | int }} or scope.has_thumbs_up
                then 'positive_feedback'
            {% endif %}
        end as resolution_evidence,
        case when scope.user_key is not null then recontacts.has_recontact end as recontacted,
        {{ recontact_window_end('scope.session_ended_at') }} as verification_due_at
    from scope
    inner join recontacts on scope.session_id = recontacts.session_id

),

final as (

    select
        evidence.session_id,
        evidence.user_key,
        evidence.session_date,
        evidence.session_started_at,
        evidence.session_ended_at,
        evidence.is_contained,
        evidence.resolution_evidence,
        evidence.resolution_evidence is not null as is_resolved,
        evidence.recontacted,
        evidence.verification_due_at,
        case
            when evidence.resolution_evidence is null then null
            when evidence.user_key is null then 'unverifiable'
            when evidence.recontacted then 'recontacted'
            when evidence.verification_due_at > latest.latest_event_at then 'pending'
            else 'verified'
        end as verification,
        {{ outcome_definition_version() }} as definition_version,
        evidence.last_loaded_at
    from evidence
    cross join latest

)

select * from final

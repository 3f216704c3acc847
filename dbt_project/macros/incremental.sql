{#-
    Incremental models find new work by load time: rows whose load committed after the
    model's own high-water mark, less a named lookback (var incremental_lookback_minutes).
-#}

{% macro loaded_after_watermark(loaded_at_column, watermark_column='last_loaded_at') -%}
    {{ loaded_at_column }} > (
        select
            {{ dbt.dateadd(
                'minute',
                -1 * var('incremental_lookback_minutes'),
                "coalesce(max(" ~ watermark_column ~ "), cast('1900-01-01' as timestamp))"
            ) }}
        from {{ this }}
    )
{%- endmacro %}


{#-
    Sessions with an event loaded after this model's watermark: each is rebuilt from all of
    its events, whenever they arrived.
-#}
{% macro touched_session_ids(events_relation, watermark_column='last_loaded_at') -%}
    select touched.session_id
    from {{ events_relation }} as touched
    where {{ loaded_after_watermark('touched.loaded_at', watermark_column) }}
{%- endmacro %}


{#-
    Session dates whose daily rows must be rebuilt: every date on which a session touched by
    new events has any event. That covers each touched session's new session_date and its
    old one (a late, earlier event moves a session back to an earlier date; the old start
    event is still among its events).
-#}
{% macro affected_session_dates(watermark_column='last_loaded_at') -%}
    select distinct cast(session_events.event_timestamp as date) as affected_date
    from {{ ref('stg_landing__events') }} as session_events
    where session_events.session_id in (
        {{ touched_session_ids(ref('stg_landing__events'), watermark_column) }}
    )
{%- endmacro %}


{#-
    Incremental where the engine can replace rows by key. Spark's Parquet tables cannot delete
    (merge needs Delta Lake, whose jars are not part of the default install), so on Spark the
    same models rebuild in full; they give the same tables either way.
-#}
{% macro incremental_materialization() -%}
    {{ return('table' if target.type == 'spark' else 'incremental') }}
{%- endmacro %}


{#- Pre-hook of the daily models: clear every affected date before the new rows go in, so a
    date that lost all its rows (its sessions moved to an earlier day) is cleared too. -#}
{% macro delete_affected_session_dates(date_column) -%}
    {%- if is_incremental() -%}
        delete from {{ this }} where {{ date_column }} in ({{ affected_session_dates() }})
    {%- endif -%}
{%- endmacro %}

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
    Sessions touched since this model's watermark, for models downstream of fct_sessions:
    fct_sessions has already rebuilt them, and its last_loaded_at says which they are without
    reading any events.
-#}
{% macro sessions_rebuilt_since_watermark(watermark_column='last_loaded_at') -%}
    select rebuilt.session_id
    from {{ ref('fct_sessions') }} as rebuilt
    where {{ loaded_after_watermark('rebuilt.last_loaded_at', watermark_column) }}
{%- endmacro %}


{#-
    Date spans of the sessions touched since a daily model's watermark, read from
    fct_sessions (already rebuilt for them). A late, earlier event can move a session back to
    an earlier date; its old date lay between its new first and last event dates, so the
    span covers the old date as well as the new one.
-#}
{% macro touched_session_spans(watermark_column='last_loaded_at') -%}
    select
        cast(touched.session_started_at as date) as first_date,
        cast(touched.session_ended_at as date) as last_date
    from {{ ref('fct_sessions') }} as touched
    where {{ loaded_after_watermark('touched.last_loaded_at', watermark_column) }}
{%- endmacro %}


{#- Session dates whose daily rows must be rebuilt: dates that have sessions now, inside the
    span of a touched session. -#}
{% macro affected_session_dates() -%}
    {{ dates_in_touched_spans(
        'select distinct session_date as candidate_date from ' ~ ref('fct_sessions')
    ) }}
{%- endmacro %}


{#-
    Incremental where the engine can replace rows by key. Spark's Parquet tables cannot delete
    (merge needs Delta Lake, whose jars are not part of the default install), so on Spark the
    same models rebuild in full; they give the same tables either way.
-#}
{% macro incremental_materialization() -%}
    {{ return('table' if target.type == 'spark' else 'incremental') }}
{%- endmacro %}


{#- Pre-hook of the daily models: clear every stored date inside a touched session's span
    before the new rows go in, so a date that lost all its sessions (they moved to an earlier
    day) is cleared too. -#}
{% macro delete_affected_session_dates(date_column) -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where {{ date_column }} in (
            {{ dates_in_touched_spans(
                'select distinct ' ~ date_column ~ ' as candidate_date from ' ~ this
            ) }}
        )
    {%- endif -%}
{%- endmacro %}


{#- Of `candidate_dates` (a query of one column, candidate_date), those inside the span of a
    session touched since this model's watermark. -#}
{% macro dates_in_touched_spans(candidate_dates) -%}
    select candidates.candidate_date as affected_date
    from ({{ candidate_dates }}) as candidates
    inner join ({{ touched_session_spans() }}) as spans
        on candidates.candidate_date between spans.first_date and spans.last_date
{%- endmacro %}

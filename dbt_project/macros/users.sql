{#-
    Marts never hold a raw user_id: the first 16 hex digits of sha256(salt || user_id), with
    the salt from $CHAT_ANALYTICS_USER_SALT (a fixed demo salt when unset: set your own, or
    anyone who knows a user_id can find its key).
-#}
{% macro user_salt() -%}
    {{ return(env_var('CHAT_ANALYTICS_USER_SALT', 'chat-analytics-demo-salt')) }}
{%- endmacro %}

{% macro warn_about_demo_salt() -%}
    {%- if execute and env_var('CHAT_ANALYTICS_USER_SALT', '') == '' -%}
        {{ log("warning: CHAT_ANALYTICS_USER_SALT is not set; user keys use the documented demo salt", info=true) }}
    {%- endif -%}
    select 1
{%- endmacro %}

{% macro user_key(user_id) -%}
    {{ return(adapter.dispatch('user_key', 'chat_analytics')(user_id)) }}
{%- endmacro %}

{% macro default__user_key(user_id) -%}
    left(sha256('{{ user_salt() }}' || {{ user_id }}), 16)
{%- endmacro %}

{#- Spark's sha256 is sha2(x, 256). -#}
{% macro spark__user_key(user_id) -%}
    left(sha2(concat('{{ user_salt() }}', {{ user_id }}), 256), 16)
{%- endmacro %}


{#- The user_key's 16 hex digits read as a signed 64-bit integer (two's complement): the same
    user, one to one, as a key that DuckDB counts distinct in about half the time of the
    16-character string (at 1.3M sessions, 90 ms -> 52 ms). -#}
{% macro user_number(user_key) -%}
    {{ return(adapter.dispatch('user_number', 'chat_analytics')(user_key)) }}
{%- endmacro %}

{% macro default__user_number(user_key) -%}
    cast(
        cast(cast('0x' || {{ user_key }} as ubigint) as hugeint)
        - case when {{ user_key }} >= '8' then 18446744073709551616 else 0 end
        as bigint
    )
{%- endmacro %}

{#- A negative base makes conv read the digits as a signed number. -#}
{% macro spark__user_number(user_key) -%}
    cast(conv({{ user_key }}, 16, -10) as bigint)
{%- endmacro %}


{#-
    Users whose rows may have changed since a users model's watermark: every user named by the
    events of a session fct_sessions rebuilt since then. That is the user the session has now
    and any user it had before, however many builds since died before the users models ran.
-#}
{% macro users_of_rebuilt_sessions(watermark_column='last_loaded_at') -%}
    {#- distinct: DuckDB then builds its hash table on these few users, not on every session
        of the history it is matched against (at 16M events 470 ms -> 110 ms) -#}
    select distinct named.user_key
    from {{ ref('int_sessions__user_keys') }} as named
    where named.session_id in ({{ sessions_rebuilt_since_watermark(watermark_column) }})
{%- endmacro %}


{#- Pre-hook of fct_users: a user whose every session went to another user has no row to
    replace theirs, so it is deleted here. -#}
{% macro delete_users_left_without_sessions() -%}
    {%- if is_incremental() -%}
        {#- NOT EXISTS per touched user, not NOT IN over every session's user: the check
            looks up the few touched users instead of hashing all of history (124 -> 52 ms at
            16M events) -#}
        delete from {{ this }}
        where user_key in (
            select touched.user_key
            from ({{ users_of_rebuilt_sessions() }}) as touched
            where not exists (
                select 1
                from {{ ref('fct_sessions') }} as sessions
                where sessions.user_key = touched.user_key
            )
        )
    {%- endif -%}
{%- endmacro %}


{#- Session dates whose per-day user counts may have changed since a daily users model's
    watermark, among `candidate_dates` (a query of one column, candidate_date): the dates
    inside the span of a rebuilt session (where a user's activity changed, including the date
    a session moved away from), and the days a touched user's first session date may have
    moved to or from (first_dates_that_may_have_moved). -#}
{% macro user_dates_to_rebuild(candidate_dates) -%}
    {{ dates_in_touched_spans(candidate_dates) }}
    union
    {{ first_dates_that_may_have_moved() }}
{%- endmacro %}


{#-
    A user is new on their first session date and returning on every later one. For a user a
    rebuilt session names, the first date, before and after this build, is either inside the
    span of one of those rebuilt sessions (so rebuilt with the spans) or the date of their
    earliest settled session (one not rebuilt since the watermark, so still on the date it
    had). That settled date can only have changed side when a rebuilt session of the user
    starts before it; a user who merely came back today leaves their history alone.
    Rebuilding every date of each touched user instead rebuilt nearly every date of history
    each day, since returning users reach back to it.
-#}
{% macro first_dates_that_may_have_moved() -%}
    select min(settled.session_date) as affected_date
    from {{ ref('fct_sessions') }} as settled
    inner join (
        select
            named.user_key,
            min(cast(rebuilt.session_started_at as date)) as first_rebuilt_date
        from {{ ref('fct_sessions') }} as rebuilt
        inner join {{ ref('int_sessions__user_keys') }} as named
            on rebuilt.session_id = named.session_id
        where {{ loaded_after_watermark('rebuilt.last_loaded_at') }}
        group by named.user_key
    ) as touched
        on settled.user_key = touched.user_key
    where not ({{ loaded_after_watermark('settled.last_loaded_at') }})
    group by settled.user_key, touched.first_rebuilt_date
    having min(settled.session_date) > touched.first_rebuilt_date
{%- endmacro %}


{#- Pre-hook of fct_users_daily: clear the stored days to rebuild, so a day left without any
    session of a known user is cleared too. -#}
{% macro delete_user_dates_to_rebuild(date_column) -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where {{ date_column }} in (
            {{ user_dates_to_rebuild(
                'select distinct ' ~ date_column ~ ' as candidate_date from ' ~ this
            ) }}
        )
    {%- endif -%}
{%- endmacro %}

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

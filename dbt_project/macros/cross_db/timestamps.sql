{#-
    Whole milliseconds from one timestamp to another, each truncated to the millisecond
    first, so that both engines give the same integer for microsecond timestamps.
-#}
{% macro milliseconds_between(start_timestamp, end_timestamp) -%}
    {{ return(adapter.dispatch('milliseconds_between', 'chat_analytics')(start_timestamp, end_timestamp)) }}
{%- endmacro %}

{% macro default__milliseconds_between(start_timestamp, end_timestamp) -%}
    (epoch_ms({{ end_timestamp }}) - epoch_ms({{ start_timestamp }}))
{%- endmacro %}

{% macro spark__milliseconds_between(start_timestamp, end_timestamp) -%}
    (unix_millis(cast({{ end_timestamp }} as timestamp)) - unix_millis(cast({{ start_timestamp }} as timestamp)))
{%- endmacro %}

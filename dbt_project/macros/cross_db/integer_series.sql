{#- A relation of integers 0..upper in a column `day_offset` (engines spell series differently). -#}
{% macro day_offsets(upper) -%}
    {{ return(adapter.dispatch('day_offsets', 'chat_analytics')(upper)) }}
{%- endmacro %}

{% macro default__day_offsets(upper) -%}
    select cast(generated.generate_series as integer) as day_offset
    from generate_series(0, {{ upper }}) as generated
{%- endmacro %}

{#- Spark has no generate_series table function; it explodes an array instead. -#}
{% macro spark__day_offsets(upper) -%}
    select explode(sequence(0, {{ upper }})) as day_offset
{%- endmacro %}

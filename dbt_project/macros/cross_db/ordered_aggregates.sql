{#-
    The value from the first (or last) row of a group in the order of the given columns,
    as one aggregate: a single pass over the group instead of a window and a join.
    `where` limits the rows considered (for example "the first non-null user_id"); say so
    whenever NULL values matter, rather than relying on how an engine treats them.
-#}
{% macro first_by(value, order_columns, where=none) -%}
    {{ return(adapter.dispatch('first_by', 'chat_analytics')(value, order_columns, where)) }}
{%- endmacro %}

{% macro default__first_by(value, order_columns, where=none) -%}
    arg_min({{ value }}, ({{ order_columns | join(', ') }})){{ aggregate_filter(where) }}
{%- endmacro %}

{% macro spark__first_by(value, order_columns, where=none) -%}
    min_by({{ value }}, struct({{ order_columns | join(', ') }})){{ aggregate_filter(where) }}
{%- endmacro %}


{% macro last_by(value, order_columns, where=none) -%}
    {{ return(adapter.dispatch('last_by', 'chat_analytics')(value, order_columns, where)) }}
{%- endmacro %}

{% macro default__last_by(value, order_columns, where=none) -%}
    arg_max({{ value }}, ({{ order_columns | join(', ') }})){{ aggregate_filter(where) }}
{%- endmacro %}

{% macro spark__last_by(value, order_columns, where=none) -%}
    max_by({{ value }}, struct({{ order_columns | join(', ') }})){{ aggregate_filter(where) }}
{%- endmacro %}


{% macro aggregate_filter(where) -%}
    {%- if where %} filter (where {{ where }}){% endif -%}
{%- endmacro %}

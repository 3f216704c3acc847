{#-
    The value from the first (or last) row of a group in the order of the given columns,
    as one aggregate: a single pass over the group instead of a window and a join.
    Rows where the value is NULL are skipped on both engines (add a filter to say so when
    the rule needs it, for example "the first non-null user_id").
-#}
{% macro first_by(value, order_columns) -%}
    {{ return(adapter.dispatch('first_by', 'chat_analytics')(value, order_columns)) }}
{%- endmacro %}

{% macro default__first_by(value, order_columns) -%}
    arg_min({{ value }}, ({{ order_columns | join(', ') }}))
{%- endmacro %}

{% macro spark__first_by(value, order_columns) -%}
    min_by({{ value }}, struct({{ order_columns | join(', ') }}))
{%- endmacro %}


{% macro last_by(value, order_columns) -%}
    {{ return(adapter.dispatch('last_by', 'chat_analytics')(value, order_columns)) }}
{%- endmacro %}

{% macro default__last_by(value, order_columns) -%}
    arg_max({{ value }}, ({{ order_columns | join(', ') }}))
{%- endmacro %}

{% macro spark__last_by(value, order_columns) -%}
    max_by({{ value }}, struct({{ order_columns | join(', ') }}))
{%- endmacro %}

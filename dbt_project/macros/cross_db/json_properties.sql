{#-
    Typed reads of one key of a JSON object held as text. A value of another JSON type reads
    as NULL, so that a number where a string belongs never leaks into a text column.
    Engines differ in their JSON functions, hence the dispatch.
-#}

{#- A property read only when the row's event_type is one that carries it (the event format's
    table of properties): elsewhere NULL. Besides keeping a stray key out of a column, this spares
    parsing the JSON of every other event: at 16M events, fct_sessions 15.6 -> 13.1 s. -#}
{% macro of_event_types(event_types, expression) -%}
    case when event_type in ('{{ event_types | join("', '") }}') then {{ expression }} end
{%- endmacro %}


{% macro json_text(json_column, key) -%}
    {{ return(adapter.dispatch('json_text', 'chat_analytics')(json_column, key)) }}
{%- endmacro %}

{% macro default__json_text(json_column, key) -%}
    case
        when json_type({{ json_column }}, '$.{{ key }}') = 'VARCHAR'
            then json_extract_string({{ json_column }}, '$.{{ key }}')
    end
{%- endmacro %}


{% macro json_number(json_column, key) -%}
    {{ return(adapter.dispatch('json_number', 'chat_analytics')(json_column, key)) }}
{%- endmacro %}

{#- The value's JSON text read as a number: only a JSON number's text is one (a string's
    has quotes, true/null/objects/arrays are no number). One parse of the object instead of
    two (json_type, then json_extract_string): 16M events, 0.98 -> 0.65 s per key. -#}
{% macro default__json_number(json_column, key) -%}
    try_cast(cast(json_extract({{ json_column }}, '$.{{ key }}') as varchar) as double)
{%- endmacro %}


{% macro json_boolean(json_column, key) -%}
    {{ return(adapter.dispatch('json_boolean', 'chat_analytics')(json_column, key)) }}
{%- endmacro %}

{% macro default__json_boolean(json_column, key) -%}
    case
        when json_type({{ json_column }}, '$.{{ key }}') = 'BOOLEAN'
            then json_extract_string({{ json_column }}, '$.{{ key }}') = 'true'
    end
{%- endmacro %}


{#- An integer rating 1..5 given as an integral JSON number or as a string of one. -#}
{% macro json_rating(json_column, key) -%}
    {{ return(adapter.dispatch('json_rating', 'chat_analytics')(json_column, key)) }}
{%- endmacro %}

{% macro default__json_rating(json_column, key) -%}
    case
        when json_type({{ json_column }}, '$.{{ key }}') in ('BIGINT', 'UBIGINT', 'DOUBLE', 'VARCHAR')
            and regexp_full_match(
                trim(json_extract_string({{ json_column }}, '$.{{ key }}')), '[1-5](\.0+)?'
            )
            then cast(cast(trim(json_extract_string({{ json_column }}, '$.{{ key }}')) as double) as integer)
    end
{%- endmacro %}


{#- Any property by a name held in a column (funnel steps filter on seed-defined properties). -#}
{% macro json_text_dynamic(json_column, key_column) -%}
    {{ return(adapter.dispatch('json_text_dynamic', 'chat_analytics')(json_column, key_column)) }}
{%- endmacro %}

{% macro default__json_text_dynamic(json_column, key_column) -%}
    json_extract_string({{ json_column }}, '$.' || {{ key_column }})
{%- endmacro %}


{#-
    Spark: JSON text is parsed into a VARIANT; schema_of_variant names the JSON type
    (STRING, BIGINT, DECIMAL(p,s), DOUBLE, BOOLEAN, OBJECT<...>, VOID for null).
-#}
{% macro spark__json_text(json_column, key) -%}
    case
        when schema_of_variant(variant_get(parse_json({{ json_column }}), '$.{{ key }}')) = 'STRING'
            then variant_get(parse_json({{ json_column }}), '$.{{ key }}', 'string')
    end
{%- endmacro %}

{% macro spark__json_number(json_column, key) -%}
    case
        when schema_of_variant(variant_get(parse_json({{ json_column }}), '$.{{ key }}'))
            in ('BIGINT', 'DOUBLE')
            or schema_of_variant(variant_get(parse_json({{ json_column }}), '$.{{ key }}'))
            like 'DECIMAL%'
            then variant_get(parse_json({{ json_column }}), '$.{{ key }}', 'double')
    end
{%- endmacro %}

{% macro spark__json_boolean(json_column, key) -%}
    case
        when schema_of_variant(variant_get(parse_json({{ json_column }}), '$.{{ key }}')) = 'BOOLEAN'
            then variant_get(parse_json({{ json_column }}), '$.{{ key }}', 'boolean')
    end
{%- endmacro %}

{% macro spark__json_rating(json_column, key) -%}
    {%- set value = "trim(variant_get(parse_json(" ~ json_column ~ "), '$." ~ key ~ "', 'string'))" -%}
    {%- set kind = "schema_of_variant(variant_get(parse_json(" ~ json_column ~ "), '$." ~ key ~ "'))" -%}
    case
        when ({{ kind }} in ('BIGINT', 'DOUBLE', 'STRING') or {{ kind }} like 'DECIMAL%')
            and {{ value }} rlike '^[1-5](\\.0+)?$'
            then cast(cast({{ value }} as double) as int)
    end
{%- endmacro %}

{% macro spark__json_text_dynamic(json_column, key_column) -%}
    get_json_object({{ json_column }}, concat('$.', {{ key_column }}))
{%- endmacro %}

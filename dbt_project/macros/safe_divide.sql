{#- NULL when the denominator is 0 (never 0, never an error); a float otherwise. -#}
{% macro safe_divide(numerator, denominator) -%}
    cast({{ numerator }} as double) / nullif(cast({{ denominator }} as double), 0.0e0)
{%- endmacro %}


{#- A numeric dbt var as a float literal, so both engines compute in double precision. -#}
{% macro float_var(name) -%}
    cast({{ var(name) }} as double)
{%- endmacro %}

{#-
    DDSketch buckets with relative accuracy a (dbt var latency_relative_accuracy):
    gamma = (1 + a) / (1 - a); a value x >= 1 goes to bucket ceil(ln(x) / ln(gamma)), a value
    below 1 to bucket 0. Any quantile of any set of rows comes back within a of the exact
    value (serving/sketch.py reads them).
-#}
{% macro ddsketch_ln_gamma() -%}
    ln((1.0e0 + {{ float_var('latency_relative_accuracy') }}) / (1.0e0 - {{ float_var('latency_relative_accuracy') }}))
{%- endmacro %}

{% macro ddsketch_bucket(value) -%}
    case
        when {{ value }} < 1.0e0 then 0
        else cast(ceil(ln({{ value }}) / {{ ddsketch_ln_gamma() }}) as integer)
    end
{%- endmacro %}


{#- The value a bucket stands for: 2 gamma^k / (gamma + 1), and 0 for bucket 0. -#}
{% macro ddsketch_bucket_value(bucket) -%}
    case
        when {{ bucket }} = 0 then 0.0e0
        else 2.0e0 * exp({{ bucket }} * {{ ddsketch_ln_gamma() }}) / (exp({{ ddsketch_ln_gamma() }}) + 1.0e0)
    end
{%- endmacro %}

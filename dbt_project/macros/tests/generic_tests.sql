{#- Rows where the expression is false fail the test. -#}
{% test expression_is_true(model, expression, where_clause=none) %}
select *
from {{ model }}
where not ({{ expression }})
{%- if where_clause %} and ({{ where_clause }}){% endif %}
{% endtest %}


{#- Values outside [min_value, max_value] fail; NULL passes (a metric with no denominator). -#}
{% test within_range(model, column_name, min_value, max_value) %}
select {{ column_name }}
from {{ model }}
where {{ column_name }} < {{ min_value }} or {{ column_name }} > {{ max_value }}
{% endtest %}


{#- The combination of columns identifies one row. -#}
{% test unique_combination(model, columns) %}
select {{ columns | join(', ') }}, count(*) as occurrences
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}


{#- Two models agree on a total: sum(column) in the model equals count or sum in another. -#}
{% test totals_match(model, column_name, other_model, other_expression) %}
with this_total as (
    select coalesce(sum({{ column_name }}), 0) as total from {{ model }}
),

other_total as (
    select {{ other_expression }} as total from {{ other_model }}
)

select this_total.total as model_total, other_total.total as other_total
from this_total
cross join other_total
where this_total.total <> other_total.total
{% endtest %}


{#- Funnel counts never rise from one step to the next within a group. -#}
{% test not_increasing_over(model, column_name, partition_by, order_by) %}
with ordered as (
    select
        {{ column_name }} as measured,
        lag({{ column_name }}) over (
            partition by {{ partition_by | join(', ') }} order by {{ order_by }}
        ) as previous_measured
    from {{ model }}
)

select *
from ordered
where previous_measured is not null and measured > previous_measured
{% endtest %}


{#- The column names one of the A/B metrics of ab_metrics(). -#}
{% test is_ab_metric(model, column_name) %}
select {{ column_name }}
from {{ model }}
where {{ column_name }} not in {{ ab_metric_names() }}
{% endtest %}


{#- Several columns hold no NULL, checked in one scan: one row per column that holds any,
    with how many (the failure count is the number of NULLs). One test per model rather than
    one per column: a daily build runs each test as a node of its own, at about 40 ms each. -#}
{% test not_null_columns(model, columns) %}
{{ config(fail_calc='coalesce(sum(null_rows), 0)') }}
with null_counts as (

    select
        {%- for column in columns %}
        sum(case when {{ column }} is null then 1 else 0 end) as {{ column }}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ model }}

)

{% for column in columns -%}
select '{{ column }}' as column_name, {{ column }} as null_rows
from null_counts
where {{ column }} > 0
{% if not loop.last %}union all
{% endif -%}
{%- endfor %}
{% endtest %}

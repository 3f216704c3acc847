{#-
    Model and column descriptions, persisted as DuckDB comments (persist_docs in
    dbt_project.yml) so that BI tools show them. dbt's own macro writes every comment after
    every model is built: a model that took only a day's rows still paid two catalog queries
    and a statement per documented column. Here one query finds the comments that differ from
    the descriptions, and only those are written: all of them after a table or view is
    created, none when an incremental model kept its table and its documentation.
-#}

{% macro duckdb__persist_docs(relation, model, for_relation, for_columns) -%}
    {%- set relation_wanted = for_relation and config.persist_relation_docs() and model.description -%}
    {%- set columns = (model.columns if for_columns and config.persist_column_docs() else {}).items() | list -%}
    {%- if relation_wanted or columns -%}
        {#- compared in DuckDB, by position: names and texts never go through agate's typing -#}
        {%- set stale = run_query(stale_comments_sql(
            relation, model.description if relation_wanted else none, columns
        )).columns[0].values() | map('int') | list -%}
        {%- set statements = [] -%}
        {%- if 0 in stale -%}
            {%- do statements.append(alter_relation_comment(relation, model.description)) -%}
        {%- endif -%}
        {%- set stale_columns = {} -%}
        {%- for name, column in columns -%}
            {%- if loop.index in stale -%}
                {%- do stale_columns.update({name: column}) -%}
            {%- endif -%}
        {%- endfor -%}
        {%- if stale_columns -%}
            {%- do statements.append(alter_column_comment(relation, stale_columns)) -%}
        {%- endif -%}
        {%- if statements -%}
            {%- do run_query(statements | join('\n')) -%}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}


{#-
    The positions whose stored comment differs from the description: 0 for the relation
    (when a description is given), i for the i-th of columns (name, column) that exists.
-#}
{% macro stale_comments_sql(relation, description, columns) -%}
    select -1 as position
    where false
    {%- if description is not none %}
    union all
    select 0
    from (
        select comment from duckdb_tables()
        where database_name = '{{ relation.database }}'
            and schema_name = '{{ relation.schema }}'
            and table_name = '{{ relation.identifier }}'
        union all
        select comment from duckdb_views()
        where database_name = '{{ relation.database }}'
            and schema_name = '{{ relation.schema }}'
            and view_name = '{{ relation.identifier }}'
    ) as stored
    where coalesce(stored.comment, '') <> {{ duckdb_escape_comment(description) }}
    {%- endif %}
    {%- if columns %}
    union all
    select wanted.position
    from (
        values
        {%- for name, column in columns %}
            ({{ loop.index }}, '{{ name | lower | replace("'", "''") }}', {{ duckdb_escape_comment(column['description'] or '') }}){{ ',' if not loop.last }}
        {%- endfor %}
    ) as wanted (position, column_name, description)
    inner join duckdb_columns() as stored
        on lower(stored.column_name) = wanted.column_name
    where stored.database_name = '{{ relation.database }}'
        and stored.schema_name = '{{ relation.schema }}'
        and stored.table_name = '{{ relation.identifier }}'
        and coalesce(stored.comment, '') <> wanted.description
    {%- endif %}
{%- endmacro %}

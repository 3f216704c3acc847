with conflicts as (

    select * from {{ source('landing', 'conflicts') }}
    where {{ in_build_window('loaded_at', source('landing', 'conflicts')) }}

),

final as (

    select
        load_id,
        {{ file_name('source_file') }} as source_file,
        record_number,
        event_id,
        session_id,
        user_id,
        event_type,
        event_timestamp,
        channel,
        properties,
        loaded_at
    from conflicts

)

select * from final

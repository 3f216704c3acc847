with quarantine as (

    select * from {{ source('landing', 'quarantine') }}
    where {{ in_build_window('loaded_at', source('landing', 'quarantine')) }}

),

final as (

    select
        load_id,
        source_file,
        record_number,
        reason,
        raw_record,
        loaded_at
    from quarantine

)

select * from final

with audit as (

    select * from {{ source('landing', 'audit') }}
    where {{ in_build_window('loaded_at', source('landing', 'audit')) }}

),

final as (

    select
        load_id,
        -- the file's name for readers of the published audit; the full path stays here
        {{ file_name('source_file') }} as source_file,
        source_file as source_path,
        file_format,
        file_sha256,
        file_bytes,
        records_read,
        records_accepted,
        records_duplicate,
        records_quarantined,
        coalesce(records_conflicting, 0) as records_conflicting,
        records_read = records_accepted + records_duplicate + records_quarantined
            as is_reconciled,
        {{ safe_divide('records_quarantined', 'records_read') }} as quarantine_share,
        started_at,
        loaded_at
    from audit

)

select * from final

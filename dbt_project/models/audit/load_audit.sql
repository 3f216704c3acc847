with audit as (

    select * from {{ source('landing', 'audit') }}

),

final as (

    select
        load_id,
        source_file,
        file_format,
        file_sha256,
        file_bytes,
        records_read,
        records_accepted,
        records_duplicate,
        records_quarantined,
        records_read = records_accepted + records_duplicate + records_quarantined
            as is_reconciled,
        {{ safe_divide('records_quarantined', 'records_read') }} as quarantine_share,
        started_at,
        loaded_at
    from audit

)

select * from final

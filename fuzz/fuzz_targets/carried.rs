//! Chain answers carried across the air gap into ceremonies (get_producers, get_table_rows,
//! get_producer_schedule, get_account, get_info/get_block for TaPoS): no panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use oryx_proto::antelope::carried;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let producer = "oryxproducer".parse().expect("name");
    let _ = carried::find_producer(text, producer);
    let _ = carried::is_schedule(text);
    let _ = carried::find_scheduled(text, producer);
    let _ = carried::AccountPermissions::from_get_account(text);
    use oryx_proto::antelope::tapos::{RefBlock, TaposSource};
    let _ = TaposSource::from_get_info(text, RefBlock::LastIrreversible);
    let _ = TaposSource::from_get_info(text, RefBlock::Head);
    let _ = TaposSource::from_get_block(text);
});

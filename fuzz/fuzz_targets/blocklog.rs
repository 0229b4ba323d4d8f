//! The block log's entry scanner over arbitrary file contents, with and without an index
//! bound: no panic, and every entry it returns lies inside the data and decodes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use oryx_proto::blocklog::scan;

fuzz_target!(|data: &[u8]| {
    let end = data.first().map(|b| u64::from(*b) * 7);
    for durable in [None, end] {
        if let Ok(s) = scan(data, 0, durable) {
            for e in &s.entries {
                assert!(e.offset <= data.len() as u64);
            }
        }
    }
});

//! A watermark file's record copy read back from disk, checksum fixed up so the fuzzer gets
//! past it: no panic; what decodes is one of the two scopes with a sane signature.
#![no_main]
use libfuzzer_sys::fuzz_target;
use oryx_proto::antelope::Checksum256;
use oryx_signer::watermark::file::{SLOT, SUM_AT, decode};

fuzz_target!(|data: &[u8]| {
    let mut b = [0u8; SLOT];
    let n = data.len().min(SUM_AT);
    b[..n].copy_from_slice(&data[..n]);
    if data.first() != Some(&0) {
        b[..4].copy_from_slice(b"ORYW");
        b[4] = 1;
    }
    let sum = Checksum256::hash(&b[..SUM_AT]);
    b[SUM_AT..].copy_from_slice(&sum.0);
    let _ = decode(&b);
    let _ = decode(data);
});

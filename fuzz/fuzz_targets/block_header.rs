//! A block header as SignBlock receives it: no panic; what decodes re-encodes to the same
//! bytes; its number, id, kind and both signing digests compute.
#![no_main]
use libfuzzer_sys::fuzz_target;
use oryx_proto::antelope::block::BlockHeader;
use oryx_proto::antelope::{Checksum256, Pack as _};

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = BlockHeader::decode(data) {
        assert_eq!(h.packed(), data);
        let _ = h.block_num();
        let _ = h.id();
        let zero = Checksum256([0; 32]);
        let _ = h.signing_digest(Some((&zero, &zero)));
        let _ = h.signing_digest(None);
        let _ = serde_json::to_string(&h);
    }
});

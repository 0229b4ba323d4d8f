//! A signed block as the assembler reads it from another instance's log: no panic; round trip;
//! merkle roots and digests compute.
#![no_main]
use libfuzzer_sys::fuzz_target;
use oryx_proto::antelope::Pack as _;
use oryx_proto::antelope::signed_block::SignedBlock;

fuzz_target!(|data: &[u8]| {
    if let Ok(b) = SignedBlock::decode(data) {
        assert_eq!(b.packed(), data);
        let _ = b.transaction_mroot_matches();
        let _ = b.signing_digest(None);
        for r in &b.transactions {
            let _ = r.trx_id();
        }
    }
});

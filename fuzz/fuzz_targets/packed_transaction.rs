//! A whole `packed_transaction` (what cleos and `/v1/chain/push_transaction` carry), zlib
//! included: no panic, no unbounded inflation, and the inner transaction round-trips.
#![no_main]
use libfuzzer_sys::fuzz_target;
use oryx_proto::antelope::codec::Unpack as _;
use oryx_proto::antelope::transaction::PackedTransaction;
use oryx_proto::antelope::{Checksum256, Pack as _};

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = PackedTransaction::unpack_exact(data) {
        assert_eq!(p.packed(), data);
        if let Ok(t) = p.transaction() {
            assert_eq!(Ok(t.packed()), p.unpacked_trx().map_err(|e| e.to_string()));
        }
        let _ = p.context_free_data();
        let _ = p.signing_digest(&Checksum256([0; 32]));
        let _ = p.id();
    }
});

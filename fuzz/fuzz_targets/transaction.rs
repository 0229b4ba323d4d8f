//! `pack(transaction)` as SignTransaction and approvers receive it: decoding never panics, and
//! what decodes re-encodes to the very same bytes (the digest the signer signs is over what it
//! shows), its id and signing digest compute.
#![no_main]
use libfuzzer_sys::fuzz_target;
use oryx_proto::antelope::transaction::Transaction;
use oryx_proto::antelope::{Checksum256, Pack as _};

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = Transaction::decode(data) {
        assert_eq!(t.packed(), data, "a transaction decoded from bytes it does not re-encode to");
        let _ = t.id();
        let _ = t.signing_digest(&Checksum256([0; 32]), &[]);
        let _ = serde_json::to_string(&t);
    }
});

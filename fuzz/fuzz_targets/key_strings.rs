//! Key and signature strings (`PUB_K1_…`, `EOS…`, `PVT_…`, WIF, `SIG_…`) from clients, config
//! files and the bridge: no panic, bounded time at any length, and what parses prints back to
//! a string that parses to the same value.
#![no_main]
use libfuzzer_sys::fuzz_target;
use oryx_proto::antelope::{PrivateKey, PublicKey, Signature};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(k) = PublicKey::parse(text) {
        assert_eq!(PublicKey::parse(&k.to_string()).ok(), Some(k));
        if let Some(legacy) = k.to_legacy_string() {
            assert_eq!(PublicKey::parse(&legacy).ok(), Some(k));
        }
    }
    if let Ok(s) = Signature::parse(text) {
        assert_eq!(Signature::parse(&s.to_string()).ok(), Some(s));
    }
    if let Ok(k) = PrivateKey::parse(text) {
        let again = PrivateKey::parse(k.to_pvt_string().as_str()).ok();
        assert_eq!(again.map(|a| a.public_key()), Some(k.public_key()));
    }
});

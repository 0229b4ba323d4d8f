//! The audit log read back by `oryx-signer audit verify` and at start: no panic on any bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = oryx_signer::audit::verify_bytes(data);
});

//! A pending approval request as stored on disk and shown to approvers: no panic when read,
//! and its status computes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use oryx_signer::approvals::PendingRequest;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = serde_json::from_slice::<PendingRequest>(data) {
        let _ = r.status(oryx_proto::antelope::TimePointSec(0));
        let _ = r.status(oryx_proto::antelope::TimePointSec(u32::MAX));
        let _ = serde_json::to_vec(&r);
    }
});

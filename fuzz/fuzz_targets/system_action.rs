//! ABI-less system actions (transfer, updateauth, regproducer, eosio.msig …) decoded from an
//! action's data for the policy and for approvers: no panic, and only canonical encodings are
//! accepted (what decodes re-packs to the same bytes).
#![no_main]
use libfuzzer_sys::fuzz_target;
use oryx_proto::antelope::actions::{KNOWN_ACTIONS, SystemAction};

fuzz_target!(|data: &[u8]| {
    let Some((first, rest)) = data.split_first() else {
        return;
    };
    let (account, name) = KNOWN_ACTIONS[usize::from(*first) % KNOWN_ACTIONS.len()];
    if let Some(Ok(a)) = SystemAction::decode(account, name, rest) {
        assert_eq!(a.pack_data(), rest);
    }
});

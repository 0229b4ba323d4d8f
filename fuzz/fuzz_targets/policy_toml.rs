//! Policy files (TOML) as `oryx-signer policy check` and SIGHUP reload read them: no panic;
//! a valid policy lints.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(p) = oryx_policy::Policy::parse(text) {
        let _ = p.lint();
    }
});

//! The bridge's keosd wallet API: a request path and body exactly as a local client sends
//! them. No panic, and a refusal's JSON body is valid JSON of bounded size.
#![no_main]
use libfuzzer_sys::fuzz_target;
use oryx_node::bridge::wallet;

const PATHS: &[&str] = &[
    "/v1/wallet/sign_digest",
    "/v1/wallet/sign_transaction",
    "/v1/wallet/get_public_keys",
    "/v1/wallet/list_wallets",
    "/v1/wallet/unlock",
    "/v1/wallet/import_key",
    "/v1/chain/get_info",
];

fuzz_target!(|data: &[u8]| {
    let Some((first, body)) = data.split_first() else {
        return;
    };
    let path = PATHS[usize::from(*first) % PATHS.len()];
    if let Err(e) = wallet::parse(path, body) {
        let text = e.body();
        let _: serde_json::Value = serde_json::from_str(&text).expect("an error body is JSON");
        assert!(text.len() < 8 * 1024, "an error body echoes too much: {} bytes", text.len());
    }
});

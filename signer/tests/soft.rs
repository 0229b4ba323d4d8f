//! Software keys (`type = "soft"`: a directory of passphrase-encrypted key files) against the
//! shared conformance suite (`conformance/`). What only they have (the file format, encryption
//! and tampering, the passphrase file, label rules, importing a known key) is tested beside the
//! code, in `src/backend/soft_file.rs`.
#![allow(clippy::unwrap_used)]

mod conformance;

use conformance::Subject;
use oryx_signer::backend::soft_file::{KdfParams, SoftDirConfig, SoftDirProvider};

/// The conformance suite's cases, each against a fresh key directory.
fn run_conformance(_test: &str, case: fn(&Subject)) {
    let tmp = tempfile::tempdir().unwrap();
    let config = SoftDirConfig {
        dir: tmp.path().join("keys"),
        passphrase_file: tmp.path().join("passphrase"),
    };
    oryx_tests::harness::write_secret(&config.passphrase_file, "conformance passphrase\n");
    case(&Subject {
        kind: "soft",
        provider: &|| {
            Box::new(
                SoftDirProvider::new(config.clone())
                    .unwrap()
                    .with_kdf_params(KdfParams::fast_for_tests()),
            )
        },
        label_taken: "already exists",
        no_such_key: "no key",
        recid_hint: true,
    });
}

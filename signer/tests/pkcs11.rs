//! The PKCS#11 backend against a real SoftHSM2 token: the shared conformance suite
//! (`conformance/`), then what only PKCS#11 has: key object attributes, PINs and module
//! configuration, and sessions lost behind the signer's back.
//!
//! SoftHSM reads `SOFTHSM2_CONF` at `C_Initialize`, and setting an environment variable inside a
//! running test process is `unsafe` in edition 2024 (which this workspace forbids). So each test
//! makes its own token in a temp dir and re-runs itself (`current_exe() <name> --exact`) as a
//! child process with `SOFTHSM2_CONF` set; the child does the PKCS#11 work. One token and one
//! process per test also keeps the module-wide state (login, `C_Finalize`) of one test away from
//! the others.
#![cfg(feature = "pkcs11")]
#![allow(clippy::unwrap_used)]

mod conformance;

use std::path::{Path, PathBuf};
use std::process::Command;

use conformance::{Subject, sign_and_check};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use oryx_proto::antelope::KeyType;
use oryx_signer::backend::pkcs11::{Pkcs11Config, Pkcs11Provider};
use oryx_signer::backend::{BackendError, KeyProvider};
use oryx_tests::harness;

const USER_PIN: &str = "oryx-user-4711";
const TOKEN: &str = "oryx-test";
const CHILD_DIR: &str = "ORYX_PKCS11_TEST_DIR";
const CHILD_MODULE: &str = "ORYX_PKCS11_TEST_MODULE";

/// What a test body gets: a fresh, initialised token.
struct Hsm {
    dir: PathBuf,
    module: PathBuf,
}

impl Hsm {
    fn config(&self) -> Pkcs11Config {
        Pkcs11Config {
            module: self.module.clone(),
            token_label: TOKEN.into(),
            pin_file: self.dir.join("user.pin"),
            sessions: 2,
            // Exercises the two-at-a-time K1 path on a real token.
            parallel_k1_attempts: true,
        }
    }

    fn provider(&self) -> Pkcs11Provider {
        Pkcs11Provider::open(&self.config()).unwrap()
    }

    /// A second, independent handle on the module, as another component of the process (or a
    /// debugging operator) would have: used to inspect objects and to break things.
    fn side_channel(&self) -> Pkcs11 {
        let ctx = Pkcs11::new(&self.module).unwrap();
        match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => panic!("C_Initialize: {e}"),
        }
        ctx
    }

    fn side_session(&self, ctx: &Pkcs11) -> Session {
        self.side_session_rw(ctx, false)
    }

    /// The same, read-write when `rw` (to change objects behind the provider's back).
    fn side_session_rw(&self, ctx: &Pkcs11, rw: bool) -> Session {
        let slot = ctx
            .get_slots_with_token()
            .unwrap()
            .into_iter()
            .find(|s| ctx.get_token_info(*s).unwrap().label() == TOKEN)
            .unwrap();
        let session = if rw {
            ctx.open_rw_session(slot).unwrap()
        } else {
            ctx.open_ro_session(slot).unwrap()
        };
        match session.login(UserType::User, Some(&AuthPin::new(USER_PIN.into()))) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(e) => panic!("C_Login: {e}"),
        }
        session
    }
}

/// Runs `body` against a fresh token in a child process (see the module doc).
fn with_softhsm(name: &str, body: impl FnOnce(&Hsm)) {
    if let (Ok(dir), Ok(module)) = (std::env::var(CHILD_DIR), std::env::var(CHILD_MODULE)) {
        body(&Hsm {
            dir: dir.into(),
            module: module.into(),
        });
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (conf, module) = harness::softhsm_token(dir.path(), TOKEN, USER_PIN);
    harness::write_secret(&dir.path().join("user.pin"), &format!("{USER_PIN}\n"));

    let out = Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env("SOFTHSM2_CONF", &conf)
        .env(CHILD_DIR, dir.path())
        .env(CHILD_MODULE, &module)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{name} failed against SoftHSM2");
    assert!(
        stdout.contains("1 passed"),
        "{name}: the child process ran no test"
    );
}

/// The conformance suite's cases, each against a fresh token.
fn run_conformance(test: &str, case: fn(&Subject)) {
    with_softhsm(test, |hsm| {
        case(&Subject {
            kind: "pkcs11",
            provider: &|| Box::new(hsm.provider()),
            label_taken: "already in use",
            no_such_key: "no signing key for",
            recid_hint: false,
        })
    });
}

#[test]
fn generated_keys_are_sensitive_non_extractable_token_objects() {
    with_softhsm(
        "generated_keys_are_sensitive_non_extractable_token_objects",
        |hsm| {
            let p = hsm.provider();
            for (label, kind) in [("producer-k1", KeyType::K1), ("producer-r1", KeyType::R1)] {
                let info = p.generate(label, kind).unwrap();
                assert_eq!(info.id.len(), 32, "16-byte CKA_ID in hex");
            }

            // The private keys are sensitive, non-extractable token objects; CKA_VALUE is not given out.
            let ctx = hsm.side_channel();
            let s = hsm.side_session(&ctx);
            for label in ["producer-k1", "producer-r1"] {
                let found = s
                    .find_objects(&[
                        Attribute::Class(ObjectClass::PRIVATE_KEY),
                        Attribute::Label(label.as_bytes().to_vec()),
                    ])
                    .unwrap();
                assert_eq!(found.len(), 1);
                let attrs = s
                    .get_attributes(
                        found[0],
                        &[
                            AttributeType::Sensitive,
                            AttributeType::Extractable,
                            AttributeType::Token,
                            AttributeType::Private,
                            AttributeType::Sign,
                            AttributeType::Value,
                        ],
                    )
                    .unwrap();
                assert!(attrs.contains(&Attribute::Sensitive(true)), "{attrs:?}");
                assert!(attrs.contains(&Attribute::Extractable(false)), "{attrs:?}");
                assert!(attrs.contains(&Attribute::Token(true)), "{attrs:?}");
                assert!(attrs.contains(&Attribute::Private(true)), "{attrs:?}");
                assert!(attrs.contains(&Attribute::Sign(true)), "{attrs:?}");
                assert!(
                    !attrs.iter().any(|a| matches!(a, Attribute::Value(_))),
                    "CKA_VALUE of a private key was readable"
                );
                let public = s
                    .find_objects(&[
                        Attribute::Class(ObjectClass::PUBLIC_KEY),
                        Attribute::Label(label.as_bytes().to_vec()),
                    ])
                    .unwrap();
                assert_eq!(public.len(), 1);
            }
        },
    );
}

/// A key whose private object lost its `CKA_ID` (made by another tool) is not listed, and the
/// provider says why instead of "no key labelled …".
#[test]
fn a_key_without_cka_id_is_reported_not_silently_skipped() {
    with_softhsm(
        "a_key_without_cka_id_is_reported_not_silently_skipped",
        |hsm| {
            let p = hsm.provider();
            p.generate("paired", KeyType::K1).unwrap();
            p.generate("no-id", KeyType::K1).unwrap();
            let ctx = hsm.side_channel();
            let s = hsm.side_session_rw(&ctx, true);
            let private = s
                .find_objects(&[
                    Attribute::Class(ObjectClass::PRIVATE_KEY),
                    Attribute::Label(b"no-id".to_vec()),
                ])
                .unwrap();
            s.update_attributes(private[0], &[Attribute::Id(Vec::new())])
                .unwrap();
            let labels: Vec<String> = p.list().unwrap().into_iter().map(|k| k.label).collect();
            assert_eq!(labels, vec!["paired".to_string()]);
            let skipped = p.skipped().unwrap();
            assert_eq!(skipped.len(), 1, "{skipped:?}");
            assert_eq!(skipped[0].0, "no-id");
            assert!(skipped[0].1.contains("no CKA_ID"), "{skipped:?}");
        },
    );
}

#[test]
fn wrong_pin_and_bad_config_give_clear_errors_without_the_pin() {
    with_softhsm(
        "wrong_pin_and_bad_config_give_clear_errors_without_the_pin",
        |hsm| {
            let wrong = "not-the-pin-31337";
            let pin_file = hsm.dir.join("wrong.pin");
            harness::write_secret(&pin_file, wrong);
            let cfg = Pkcs11Config {
                pin_file,
                ..hsm.config()
            };
            let err = Pkcs11Provider::open(&cfg).unwrap_err();
            let (shown, debug) = (err.to_string(), format!("{err:?}"));
            println!("wrong PIN: {shown}");
            assert!(
                shown.contains("PinIncorrect") && shown.contains("PIN file"),
                "{shown}"
            );
            for text in [&shown, &debug] {
                assert!(!text.contains(wrong) && !text.contains(USER_PIN), "{text}");
            }

            let missing = Pkcs11Config {
                pin_file: hsm.dir.join("no-such.pin"),
                ..hsm.config()
            };
            let err = Pkcs11Provider::open(&missing).unwrap_err().to_string();
            assert!(err.contains("no-such.pin"), "{err}");

            let no_token = Pkcs11Config {
                token_label: "absent".into(),
                ..hsm.config()
            };
            let err = Pkcs11Provider::open(&no_token).unwrap_err();
            assert!(matches!(err, BackendError::Unavailable(_)), "{err:?}");

            let no_module = Pkcs11Config {
                module: Path::new("/nonexistent/libpkcs11.so").into(),
                ..hsm.config()
            };
            assert!(Pkcs11Provider::open(&no_module).is_err());

            // The right PIN still works (SoftHSM counts no retries against us here).
            let p = hsm.provider();
            assert!(!format!("{p:?}").contains(USER_PIN));
        },
    );
}

#[test]
fn signing_survives_a_logout_behind_our_back() {
    with_softhsm("signing_survives_a_logout_behind_our_back", |hsm| {
        let p = hsm.provider();
        let info = p.generate("bp", KeyType::K1).unwrap();
        let backend = p.open(&info.public_key).unwrap();
        sign_and_check(&*backend, 3);

        // Login state is per application: a logout on any session logs out all of ours.
        let ctx = hsm.side_channel();
        let s = hsm.side_session(&ctx);
        s.logout().unwrap();
        drop(s);

        sign_and_check(&*backend, 10);
        p.health().unwrap();
    });
}

#[test]
fn signing_survives_a_module_restart() {
    with_softhsm("signing_survives_a_module_restart", |hsm| {
        let p = hsm.provider();
        let k1 = p.generate("bp-k1", KeyType::K1).unwrap();
        let r1 = p.generate("bp-r1", KeyType::R1).unwrap();
        let k1 = p.open(&k1.public_key).unwrap();
        let r1 = p.open(&r1.public_key).unwrap();
        sign_and_check(&*k1, 2);

        // C_Finalize + C_Initialize elsewhere in the process: every session handle we hold is gone
        // (CKR_SESSION_HANDLE_INVALID) and object handles may be renumbered.
        let ctx = hsm.side_channel();
        ctx.clone().finalize().unwrap();
        let ctx = hsm.side_channel();
        sign_and_check(&*k1, 5);
        sign_and_check(&*r1, 5);
        p.health().unwrap();

        // C_Finalize alone (CKR_CRYPTOKI_NOT_INITIALIZED): the provider initializes again itself.
        ctx.finalize().unwrap();
        p.health().unwrap();
        sign_and_check(&*r1, 5);
        sign_and_check(&*k1, 5);
    });
}

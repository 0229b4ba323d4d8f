//! The YubiHSM 2 backend against the yubihsm crate's `MockHsm`: the shared conformance suite
//! (`conformance/`), then what only the YubiHSM has: public keys read from the device, label
//! rules, credentials, capabilities and domains.
#![cfg(feature = "yubihsm")]
#![allow(clippy::unwrap_used)]

mod conformance;

use conformance::Subject;
use oryx_proto::antelope::KeyType;
use oryx_signer::backend::yubihsm::{YubiHsmConfig, YubiHsmProvider};
use oryx_signer::backend::{BackendError, KeyProvider};
use oryx_signer::secret::{Secret, SecretKind};
use yubihsm::{Capability, Client, Connector, Credentials, object};

/// MockHsm's factory authentication key: id 1, password "password".
const AUTH_KEY_ID: u16 = 1;
const PASSWORD: &str = "password";

fn provider(connector: &Connector) -> YubiHsmProvider {
    let password = Secret::new(SecretKind::YubiHsmPassword, PASSWORD).unwrap();
    YubiHsmProvider::with_connector(connector.clone(), AUTH_KEY_ID, &password, 1).unwrap()
}

/// A separate raw client on the same mock device, to inspect what the provider did.
fn raw_client(connector: &Connector) -> Client {
    Client::open(connector.clone(), Credentials::default(), true).unwrap()
}

fn object_id(id: &str) -> u16 {
    u16::from_str_radix(id.trim_start_matches("0x"), 16).unwrap()
}

/// The conformance suite's cases, each against a fresh MockHsm. Every provider the case opens
/// talks to that one device through a clone of its connector.
fn run_conformance(_test: &str, case: fn(&Subject)) {
    let connector = Connector::mockhsm();
    case(&Subject {
        kind: "yubihsm",
        provider: &|| Box::new(provider(&connector)),
        label_taken: "already exists",
        no_such_key: "no YubiHSM signing key for",
        recid_hint: false,
    });
}

#[test]
fn listed_public_keys_are_the_devices_own_in_object_id_order() {
    let connector = Connector::mockhsm();
    let hsm = provider(&connector);
    let k1 = hsm.generate("producer-k1", KeyType::K1).unwrap();
    let r1 = hsm.generate("producer-r1", KeyType::R1).unwrap();

    // The listed public keys are the device's own, not a cached copy.
    let raw = raw_client(&connector);
    for info in [&k1, &r1] {
        let public = raw.get_public_key(object_id(&info.id)).unwrap();
        let mut sec1 = vec![0x04];
        sec1.extend_from_slice(public.as_slice());
        assert_eq!(
            oryx_proto::antelope::PublicKey::from_sec1(info.public_key.kind(), &sec1).unwrap(),
            info.public_key
        );
    }

    let listed = hsm.list().unwrap();
    assert_eq!(listed, vec![k1.clone(), r1.clone()]);
    assert_eq!(listed[0].label, "producer-k1");
    assert_eq!(listed[1].label, "producer-r1");
}

#[test]
fn generated_keys_sign_only_and_are_not_exportable() {
    let connector = Connector::mockhsm();
    let hsm = provider(&connector);
    let raw = raw_client(&connector);
    for (label, kind, algorithm) in [
        (
            "caps-k1",
            KeyType::K1,
            yubihsm::asymmetric::Algorithm::EcK256,
        ),
        (
            "caps-r1",
            KeyType::R1,
            yubihsm::asymmetric::Algorithm::EcP256,
        ),
    ] {
        let key = hsm.generate(label, kind).unwrap();
        let info = raw
            .get_object_info(object_id(&key.id), object::Type::AsymmetricKey)
            .unwrap();
        assert_eq!(info.capabilities, Capability::SIGN_ECDSA);
        assert!(
            !info
                .capabilities
                .contains(Capability::EXPORTABLE_UNDER_WRAP)
        );
        assert_eq!(info.algorithm, yubihsm::Algorithm::Asymmetric(algorithm));
        assert_eq!(info.domains, yubihsm::Domain::DOM1);
        assert_eq!(info.origin, object::Origin::Generated);
        assert_eq!(info.label.to_string(), label);
    }
}

#[test]
fn labels_over_40_bytes_are_refused() {
    let connector = Connector::mockhsm();
    let hsm = provider(&connector);
    let forty = "x".repeat(40);
    hsm.generate(&forty, KeyType::R1).unwrap();
    let long = hsm.generate(&"x".repeat(41), KeyType::R1).unwrap_err();
    assert!(long.to_string().contains("at most 40 bytes"), "{long}");
    // Multi-byte characters count in bytes: 14 × 3 bytes = 42.
    assert!(hsm.generate(&"€".repeat(14), KeyType::K1).is_err());

    assert_eq!(hsm.list().unwrap().len(), 1);
}

#[test]
fn wrong_password_is_a_clear_error_without_the_password() {
    let connector = Connector::mockhsm();
    let secret = "correct-horse-battery-staple";
    let password = Secret::new(SecretKind::YubiHsmPassword, secret).unwrap();
    let err = YubiHsmProvider::with_connector(connector, AUTH_KEY_ID, &password, 1).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, BackendError::Failed(_)), "{err:?}");
    assert!(text.contains("authentication"), "{text}");
    assert!(text.contains("auth key 1"), "{text}");
    assert!(!text.contains(secret), "{text}");
    assert!(!format!("{err:?}").contains(secret));
    assert!(!format!("{password:?}").contains(secret));
}

#[test]
fn password_file_is_read_and_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("yubihsm-password");
    oryx_tests::harness::write_secret(&path, &format!("{PASSWORD}\n"));
    let password = Secret::from_file(SecretKind::YubiHsmPassword, &path).unwrap();
    let hsm = YubiHsmProvider::with_connector(Connector::mockhsm(), AUTH_KEY_ID, &password, 1);
    hsm.unwrap().health().unwrap();

    let missing =
        Secret::from_file(SecretKind::YubiHsmPassword, &dir.path().join("nope")).unwrap_err();
    assert!(missing.to_string().contains("password file"), "{missing}");
    oryx_tests::harness::write_secret(&path, "\n");
    assert!(Secret::from_file(SecretKind::YubiHsmPassword, &path).is_err());
}

#[test]
fn config_without_a_reachable_connector_is_unavailable() {
    // Nothing listens on port 1 of the loopback: the HTTP connector cannot connect.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pw");
    oryx_tests::harness::write_secret(&path, "pw\n");
    let config: YubiHsmConfig = serde_json::from_value(serde_json::json!({
        "connector": { "type": "http", "addr": "127.0.0.1", "port": 1 },
        "auth_key_id": 1,
        "password_file": path,
    }))
    .unwrap();
    let err = YubiHsmProvider::connect(&config).unwrap_err();
    assert!(matches!(err, BackendError::Unavailable(_)), "{err:?}");
    assert!(!err.to_string().contains("pw\n"));
}

#[test]
fn invalid_domain_is_refused() {
    let password = Secret::new(SecretKind::YubiHsmPassword, PASSWORD).unwrap();
    for domain in [0, 17] {
        let err =
            YubiHsmProvider::with_connector(Connector::mockhsm(), AUTH_KEY_ID, &password, domain)
                .unwrap_err();
        assert!(err.to_string().contains("domain"), "{err}");
    }
}

#[test]
fn open_unknown_key_fails_and_other_domains_are_not_listed() {
    let connector = Connector::mockhsm();
    let hsm = provider(&connector);
    let raw = raw_client(&connector);
    // A key in domain 2 and a key without SIGN_ECDSA are not this provider's signing keys.
    raw.generate_asymmetric_key(
        100,
        object::Label::from_bytes(b"other-domain").unwrap(),
        yubihsm::Domain::DOM2,
        Capability::SIGN_ECDSA,
        yubihsm::asymmetric::Algorithm::EcK256,
    )
    .unwrap();
    raw.generate_asymmetric_key(
        101,
        object::Label::from_bytes(b"no-sign").unwrap(),
        yubihsm::Domain::DOM1,
        Capability::DERIVE_ECDH,
        yubihsm::asymmetric::Algorithm::EcP256,
    )
    .unwrap();
    assert!(hsm.list().unwrap().is_empty());

    let other = raw.get_public_key(100).unwrap();
    let mut sec1 = vec![0x04];
    sec1.extend_from_slice(other.as_slice());
    let other = oryx_proto::antelope::PublicKey::from_sec1(KeyType::K1, &sec1).unwrap();
    assert!(hsm.open(&other).is_err());

    // A generated key skips the ids already taken.
    let mine = hsm.generate("mine", KeyType::K1).unwrap();
    assert_eq!(mine.id, "0x0001");
    assert_eq!(hsm.list().unwrap(), vec![mine]);
}

#[cfg(feature = "yubihsm-mock")]
#[test]
fn mock_connector_from_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pw");
    oryx_tests::harness::write_secret(&path, "password\n");
    let config: YubiHsmConfig = serde_json::from_value(serde_json::json!({
        "connector": { "type": "mock" },
        "auth_key_id": 1,
        "password_file": path,
    }))
    .unwrap();
    let hsm = YubiHsmProvider::connect(&config).unwrap();
    hsm.health().unwrap();
    let key = hsm.generate("from-config", KeyType::R1).unwrap();
    assert_eq!(hsm.list().unwrap(), vec![key]);
}

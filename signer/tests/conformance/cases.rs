//! The bodies of the conformance cases, one per test of the same name in every backend's file.

use std::collections::HashSet;
use std::sync::Arc;

use oryx_proto::antelope::{Checksum256, KeyType};
use oryx_signer::backend::soft::SoftKey;
use oryx_signer::backend::{BackendError, KeyBackend, KeyProvider};
use oryx_signer::signing::{SignOptions, sign};

use super::{Subject, check, sign_and_check};

/// A K1 and an R1 key (every backend supports both) are generated with their kind and label and
/// distinct ids; a fresh provider lists nothing, then both keys; a second provider (a restarted
/// signer) lists and opens the same keys.
pub(super) fn generate_list_and_open(s: &Subject) {
    let p = (s.provider)();
    assert_eq!(p.kind(), s.kind);
    p.health().unwrap();
    assert!(p.list().unwrap().is_empty());

    let k1 = p.generate("producer-k1", KeyType::K1).unwrap();
    let r1 = p.generate("producer-r1", KeyType::R1).unwrap();
    assert_eq!(k1.public_key.kind(), KeyType::K1);
    assert_eq!(r1.public_key.kind(), KeyType::R1);
    assert_eq!(
        (k1.label.as_str(), r1.label.as_str()),
        ("producer-k1", "producer-r1")
    );
    assert_ne!(k1.id, r1.id);

    let by_label = |p: &dyn KeyProvider| {
        let mut listed = p.list().unwrap();
        listed.sort_by(|a, b| a.label.cmp(&b.label));
        listed
    };
    assert_eq!(by_label(&*p), vec![k1.clone(), r1.clone()]);
    let again = (s.provider)();
    assert_eq!(by_label(&*again), vec![k1.clone(), r1.clone()]);

    for provider in [&p, &again] {
        for info in [&k1, &r1] {
            let backend = provider.open(&info.public_key).unwrap();
            assert_eq!(*backend.public_key(), info.public_key);
        }
    }
    p.health().unwrap();
}

/// Fifty signatures per key through [`sign`] (which does low-S, the recovery id and the
/// canonical loop above every backend), with keys a second provider opened: each recovers to the
/// key over its digest, K1 ones are canonical; distinct digests give distinct signatures; R1
/// takes one backend call per signature and K1 needed the loop at least once.
pub(super) fn fifty_signatures_per_key_recover_and_k1_is_canonical(s: &Subject) {
    const N: u32 = 50;
    let p = (s.provider)();
    let signer = (s.provider)();
    for (label, kind) in [("k1", KeyType::K1), ("r1", KeyType::R1)] {
        let info = p.generate(label, kind).unwrap();
        let backend = signer.open(&info.public_key).unwrap();
        let mut signatures = HashSet::new();
        let mut attempts = 0;
        for i in 0..N {
            let digest = Checksum256::hash(format!("{label} block {i}").as_bytes());
            let signed = sign(&*backend, &digest, SignOptions::default()).unwrap();
            check(&info.public_key, &digest, &signed.signature);
            if kind == KeyType::R1 {
                assert_eq!(signed.attempts, 1, "R1 has no canonical loop");
            }
            attempts += signed.attempts;
            signatures.insert(signed.signature.to_sig_string());
        }
        assert_eq!(signatures.len(), N as usize);
        if kind == KeyType::K1 {
            // About half of all K1 signatures are not canonical, whether the nonces are random
            // (HSMs) or fc's counter (software keys): across 50 digests at least one took more
            // than one call.
            assert!(attempts > N, "{attempts} attempts for {N} K1 signatures");
        }

        let raw = backend.sign_digest(&Checksum256::hash(b"raw"), 1).unwrap();
        assert_eq!(raw.recid_hint.is_some(), s.recid_hint, "{raw:?}");
    }
}

/// A label in use is refused for either kind, as is an empty label; the refusals leave the
/// existing key listed and usable.
pub(super) fn duplicate_label_is_refused(s: &Subject) {
    let p = (s.provider)();
    let first = p.generate("bp1", KeyType::K1).unwrap();
    for kind in [KeyType::K1, KeyType::R1] {
        let err = p.generate("bp1", kind).unwrap_err();
        assert!(matches!(err, BackendError::Failed(_)), "{err:?}");
        assert!(err.to_string().contains(s.label_taken), "{err}");
    }
    assert!(p.generate("", KeyType::K1).is_err());
    assert_eq!(p.list().unwrap(), vec![first.clone()]);
    sign_and_check(&*p.open(&first.public_key).unwrap(), 1);
}

/// Opening a key the backend does not hold fails, naming the key, while a key it holds opens.
pub(super) fn unknown_key_is_refused_on_open(s: &Subject) {
    let p = (s.provider)();
    let held = p.generate("held", KeyType::K1).unwrap();
    for kind in [KeyType::K1, KeyType::R1] {
        let stranger = *SoftKey::generate(kind).unwrap().public_key();
        let err = p.open(&stranger).unwrap_err();
        assert!(matches!(err, BackendError::Failed(_)), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains(&format!("{} {stranger}", s.no_such_key)),
            "{text}"
        );
    }
    assert_eq!(
        *p.open(&held.public_key).unwrap().public_key(),
        held.public_key
    );
}

/// Eight threads share one K1 and one R1 key and sign 25 digests each; the provider stays healthy.
pub(super) fn eight_threads_sign_concurrently(s: &Subject) {
    let p = (s.provider)();
    let keys: Vec<Arc<dyn KeyBackend>> = [("a", KeyType::K1), ("b", KeyType::R1)]
        .into_iter()
        .map(|(label, kind)| {
            p.open(&p.generate(label, kind).unwrap().public_key)
                .unwrap()
        })
        .collect();
    std::thread::scope(|scope| {
        for t in 0..8 {
            let key = &keys[t % 2];
            scope.spawn(move || sign_and_check(&**key, 25));
        }
    });
    p.health().unwrap();
}

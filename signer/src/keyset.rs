//! The keys the pipeline may use, changeable while the signer runs (GenerateKey adds keys,
//! RetireKey retires them).
//!
//! Guards: a retired key never signs again. Each key carries a *gate*: the signing path holds it
//! shared from before the retired check to after the watermark commit; retiring takes it
//! exclusively to set the flag, so once [`KeyEntry::retire`] returns no request is between
//! reserve and commit on the key and every later one sees it retired. The hot path pays one
//! shared lock on the key set (to clone an `Arc`) and one uncontended shared lock on the gate.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};

use oryx_proto::antelope::{Checksum256, PublicKey};

use crate::backend::{BackendError, KeyBackend, RawSignature};
use crate::signing::{SignError, SignOptions, Signed, sign};
use crate::watermark::RetryPolicy;

/// A key the pipeline may use.
#[derive(Debug)]
pub struct KeyEntry {
    /// The device-backed key.
    pub backend: Arc<dyn KeyBackend>,
    /// Chains it may sign for.
    pub chains: Vec<Checksum256>,
    /// Whether SignDigest is allowed.
    pub blind_digest: bool,
    /// Same-height retry setting for blind Savanna digests.
    pub retry: RetryPolicy,
    /// How long its verified signatures take (see [`KeyEntry::sign`]).
    pub sign_time: Arc<oryx_proto::stats::Window>,
    /// The keys it succeeds, nearest first (its `successor_of` chain; the last is its
    /// [`KeyEntry::identity`]), so a node can follow a hand-over to it (ListKeys).
    pub predecessors: Vec<PublicKey>,
    /// The key's label on its device (for ListKeys).
    pub label: String,
    /// The backend kind: `pkcs11`, `yubihsm`, `soft`.
    pub backend_kind: String,
    /// The public key as text (`PUB_K1_…`) and in its legacy form (`EOS…`, empty for keys that
    /// have none), made once: base58 costs microseconds, and every request's audit entries and
    /// every ListKeys answer carry them.
    texts: (String, String),
    retired: AtomicBool,
    gate: RwLock<()>,
}

impl KeyEntry {
    /// A key that may sign, under its own policy identity.
    pub fn new(
        backend: Arc<dyn KeyBackend>,
        chains: Vec<Checksum256>,
        blind_digest: bool,
        retry: RetryPolicy,
    ) -> Self {
        let key = backend.public_key();
        let texts = (key.to_string(), key.to_legacy_string().unwrap_or_default());
        KeyEntry {
            backend,
            texts,
            chains,
            blind_digest,
            retry,
            sign_time: Default::default(),
            predecessors: Vec::new(),
            label: String::new(),
            backend_kind: String::new(),
            retired: AtomicBool::new(false),
            gate: RwLock::new(()),
        }
    }

    /// A key that was retired before this start: kept so requests get KEY_RETIRED (not
    /// UNKNOWN_KEY), with no device behind it.
    pub fn retired(key: PublicKey, predecessors: Vec<PublicKey>) -> Self {
        let entry = KeyEntry::new(
            Arc::new(RetiredKey(key)),
            Vec::new(),
            false,
            RetryPolicy::Refuse,
        )
        .with_lineage(predecessors);
        entry.retired.store(true, Ordering::SeqCst);
        entry
    }

    /// The same key as the successor of `predecessors` (nearest first): it signs under the
    /// last one's policy identity (the root of its chain).
    pub fn with_lineage(mut self, predecessors: Vec<PublicKey>) -> Self {
        self.predecessors = predecessors;
        self
    }

    /// The key whose policy rules and watermark it signs under: itself, or the root of its
    /// `successor_of` chain (see `watermark::scope`). Signatures always use the real key.
    pub fn identity(&self) -> PublicKey {
        self.predecessors
            .last()
            .copied()
            .unwrap_or(*self.public_key())
    }

    /// The same key with its device label and backend kind (for listings).
    pub fn with_label(mut self, label: impl Into<String>, backend_kind: impl Into<String>) -> Self {
        self.label = label.into();
        self.backend_kind = backend_kind.into();
        self
    }

    /// The public key.
    pub fn public_key(&self) -> &PublicKey {
        self.backend.public_key()
    }

    /// [`KeyEntry::public_key`] as text, `PUB_K1_…` / `PUB_R1_…`.
    pub fn text(&self) -> &str {
        &self.texts.0
    }

    /// [`KeyEntry::public_key`] in its legacy `EOS…` form; empty for a key type without one.
    pub fn legacy_text(&self) -> &str {
        &self.texts.1
    }

    /// Signs with this key's backend, recording how long a verified signature took.
    pub fn sign(&self, digest: &Checksum256, opts: SignOptions) -> Result<Signed, SignError> {
        let t0 = std::time::Instant::now();
        let out = sign(self.backend.as_ref(), digest, opts);
        if out.is_ok() {
            self.sign_time.record(t0.elapsed());
        }
        out
    }

    /// Whether the key was retired.
    pub fn is_retired(&self) -> bool {
        self.retired.load(Ordering::SeqCst)
    }

    /// Held shared by a request from its retired check to its watermark commit.
    pub fn gate(&self) -> RwLockReadGuard<'_, ()> {
        // The gate guards no data, so a panic while holding it leaves nothing inconsistent.
        self.gate
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Retires the key: waits for every request inside the gate to finish, then refuses all
    /// later ones. Returns whether it was already retired.
    pub fn retire(&self) -> bool {
        let _exclusive = self
            .gate
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.retired.swap(true, Ordering::SeqCst)
    }
}

/// Self-test signatures per key.
const SELF_TEST_SIGNATURES: usize = 3;

/// Signs a probe digest with a key before it is used: proves the backend holds the key (a
/// signature that recovers to another key is an error) and measures its signing time, so a node
/// can warn before nodeos's first block when the HSM is slower than nodeos's timeout. The probe
/// digest is domain-separated (sha256 of "oryx signer self-test v1", the key and the time), so
/// it can never be a block id, a transaction digest or a transcript digest. An unreachable
/// backend is only a warning: requests fail closed later.
pub fn self_test(entry: &KeyEntry) -> Result<(), String> {
    let key = entry.public_key();
    let mut preimage = b"oryx signer self-test v1\0".to_vec();
    preimage.extend_from_slice(key.to_string().as_bytes());
    preimage.extend_from_slice(&crate::clock::now_secs().0.to_le_bytes());
    let digest = Checksum256::hash(&preimage);
    for _ in 0..SELF_TEST_SIGNATURES {
        match entry.sign(&digest, SignOptions::default()) {
            Ok(_) => {}
            Err(SignError::DoesNotVerify { .. }) => {
                return Err(format!(
                    "key {key}: its backend signs with a different key: check the key's backend and label"
                ));
            }
            Err(e) => {
                tracing::warn!(%key, "self-test signature failed: {e}; requests for this key will be refused until the backend recovers");
                return Ok(());
            }
        }
    }
    if let Some(q) = entry.sign_time.quantiles() {
        tracing::info!(%key, p50_ms = q.p50.as_secs_f64() * 1e3, max_ms = q.p99.as_secs_f64() * 1e3, "self-test: key signs");
    }
    Ok(())
}

/// The backend of a key retired before this start: it never signs.
#[derive(Debug)]
struct RetiredKey(PublicKey);

impl KeyBackend for RetiredKey {
    fn public_key(&self) -> &PublicKey {
        &self.0
    }

    fn sign_digest(&self, _: &Checksum256, _: u32) -> Result<RawSignature, BackendError> {
        Err(BackendError::Failed(format!("{} is retired", self.0)))
    }
}

#[derive(Debug, Default)]
struct Inner {
    map: HashMap<PublicKey, Arc<KeyEntry>>,
    /// Insertion order, for stable listings.
    order: Vec<PublicKey>,
}

/// Keys by public key; readers never wait for a signature, only for an insertion.
#[derive(Debug, Default)]
pub struct KeySet {
    inner: RwLock<Inner>,
}

impl KeySet {
    /// A set of these keys.
    pub fn new(entries: impl IntoIterator<Item = KeyEntry>) -> Self {
        let set = KeySet::default();
        for e in entries {
            set.insert(e);
        }
        set
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        // Insertions complete before the lock is released; nothing half-done can be seen.
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The entry for `key` (retired or not).
    pub fn get(&self, key: &PublicKey) -> Option<Arc<KeyEntry>> {
        self.read().map.get(key).cloned()
    }

    /// Adds a key (replacing an entry with the same public key).
    pub fn insert(&self, entry: KeyEntry) -> Arc<KeyEntry> {
        let entry = Arc::new(entry);
        let key = *entry.public_key();
        let mut inner = self
            .inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if inner.map.insert(key, entry.clone()).is_none() {
            inner.order.push(key);
        }
        entry
    }

    /// Every entry, in insertion order.
    pub fn all(&self) -> Vec<Arc<KeyEntry>> {
        let inner = self.read();
        inner
            .order
            .iter()
            .filter_map(|k| inner.map.get(k).cloned())
            .collect()
    }

    /// The keys that may sign.
    pub fn active(&self) -> Vec<Arc<KeyEntry>> {
        let mut all = self.all();
        all.retain(|e| !e.is_retired());
        all
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::backend::soft::SoftKey;
    use oryx_proto::antelope::KeyType;

    #[test]
    fn retire_waits_for_requests_inside_the_gate() {
        let soft = Arc::new(SoftKey::generate(KeyType::K1).unwrap());
        let key = *soft.public_key();
        let set = Arc::new(KeySet::new([KeyEntry::new(
            soft,
            vec![],
            false,
            RetryPolicy::Refuse,
        )]));
        let entry = set.get(&key).unwrap();
        let inside = entry.gate();
        let (tx, rx) = std::sync::mpsc::channel();
        let e2 = entry.clone();
        let t = std::thread::spawn(move || {
            let was = e2.retire();
            tx.send(was).unwrap();
        });
        // The retirement cannot finish while a request is inside.
        assert!(
            rx.recv_timeout(std::time::Duration::from_millis(50))
                .is_err()
        );
        assert!(!entry.is_retired());
        drop(inside);
        assert!(!rx.recv().unwrap());
        t.join().unwrap();
        assert!(entry.is_retired());
        assert!(entry.retire(), "a second retirement reports it");
        assert!(set.active().is_empty());
        assert_eq!(set.all().len(), 1);
    }
}

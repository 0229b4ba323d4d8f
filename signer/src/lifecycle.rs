//! Key lifecycle for rotation ceremonies: GenerateKey, RetireKey, SignTranscript, and the
//! start-time merge of the key registry with `[[keys]]`.
//!
//! Guards:
//! - only admins (config `admins`) get past the first check; every call, allowed or refused,
//!   leaves an audit entry, and an allowed change is durable (registry, watermarks) before its
//!   audit entry and its answer;
//! - GenerateKey never makes a second key for one label: the registry and then the device are
//!   asked for the label first, under one lock for all lifecycle calls;
//! - after RetireKey the old key signs nothing (also after a restart), and the successor's
//!   watermark is at least the old key's on every chain *before* the retirement is recorded:
//!   stop the old key (waiting for its in-flight requests) → hand over → registry → audit;
//! - the transcript key signs only [`transcript_digest`]s.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use oryx_proto::antelope::{Checksum256, KeyType, PublicKey, Signature};

use crate::audit::{AuditDecision, AuditEntryRef, AuditKind, AuditRecord};
use crate::backend::KeyProvider;
use crate::config::{Config, KeyConfig};
use crate::keyset::{KeyEntry, self_test};
use crate::pipeline::Pipeline;
use crate::refusal::{Reason, Refused, refused, sanitize_principal, sign_failure};
use crate::registry::{self, KeyState, Registry, RegistryEntry, Source};
use crate::signing::SignOptions;

/// Longest ceremony id SignTranscript accepts.
pub const MAX_CEREMONY_LEN: usize = 128;

/// What the audit key signs for a ceremony transcript:
/// `sha256("oryx transcript v1\0" || ceremony || 0x00 || head)`, where `ceremony` is the
/// ceremony id's UTF-8 bytes (printable ASCII, at most [`MAX_CEREMONY_LEN`]) and `head` the
/// transcript's last entry hash (32 bytes). The domain tag keeps it apart from every block,
/// transaction and self-test digest.
pub fn transcript_digest(ceremony: &str, head: &Checksum256) -> Checksum256 {
    let mut preimage = b"oryx transcript v1\0".to_vec();
    preimage.extend_from_slice(ceremony.as_bytes());
    preimage.push(0);
    preimage.extend_from_slice(&head.0);
    Checksum256::hash(&preimage)
}

/// GenerateKey, decoded: make a key in `backend` under `label`, or return the one already there.
#[derive(Debug, Clone)]
pub struct GenerateKey {
    /// The `[backends]` name.
    pub backend: String,
    /// The key's label on the device: its idempotency key.
    pub label: String,
    /// K1 or R1.
    pub key_type: KeyType,
    /// The key it will succeed (it inherits that key's chains, settings and rules).
    pub successor_of: Option<PublicKey>,
    /// Chain names (`[[chains]]`) for a key without a predecessor.
    pub chains: Vec<String>,
    /// Whether a key without a predecessor may sign blind digests.
    pub blind_digest: bool,
}

/// What GenerateKey did.
#[derive(Debug)]
pub struct Generated {
    /// The key as the pipeline now holds it.
    pub entry: Arc<KeyEntry>,
    /// The label already held this key (a repeated call): nothing was generated.
    pub existing: bool,
    /// The key it succeeds.
    pub successor_of: Option<PublicKey>,
}

/// RetireKey, decoded.
#[derive(Debug, Clone, Copy)]
pub struct RetireKey {
    /// The key to stop.
    pub key: PublicKey,
    /// The key that takes over its watermarks.
    pub successor: Option<PublicKey>,
}

/// One watermark handed to a successor: where the successor's watermark is after the hand-over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handover {
    /// The chain.
    pub chain_id: Checksum256,
    /// The successor's block number now.
    pub block_num: u32,
    /// The successor's slot now.
    pub slot: u32,
}

/// What RetireKey did.
#[derive(Debug, Clone)]
pub struct Retired {
    /// The watermarks handed over.
    pub handovers: Vec<Handover>,
    /// The key was retired before (a repeated call).
    pub already_retired: bool,
}

/// SignTranscript, decoded.
#[derive(Debug, Clone)]
pub struct SignTranscript {
    /// The ceremony id.
    pub ceremony: String,
    /// The transcript's last entry hash.
    pub head: Checksum256,
}

/// A signed transcript head.
#[derive(Debug, Clone)]
pub struct TranscriptSigned {
    /// [`transcript_digest`] of the ceremony and head.
    pub digest: Checksum256,
    /// The audit key's signature over it.
    pub signature: Signature,
    /// The audit key.
    pub public_key: PublicKey,
}

/// A lifecycle call's outcome before it is audited.
struct Done<T> {
    value: T,
    key: PublicKey,
    decision: AuditDecision,
    reason: String,
    digest: Option<Checksum256>,
    signature: Option<Signature>,
}

/// The lifecycle service: everything GenerateKey, RetireKey and SignTranscript need.
#[derive(Debug)]
pub struct Lifecycle {
    pipeline: Arc<Pipeline>,
    providers: BTreeMap<String, Arc<dyn KeyProvider>>,
    registry: Option<Arc<Registry>>,
    /// Chain names and ids from the config.
    chains: Vec<(String, Checksum256)>,
    config_keys: Vec<KeyConfig>,
    audit_key: Option<PublicKey>,
    /// One lifecycle change at a time (two GenerateKey calls with one label must not both
    /// generate).
    serial: Mutex<()>,
}

impl Lifecycle {
    /// Builds the service.
    pub fn new(
        pipeline: Arc<Pipeline>,
        providers: BTreeMap<String, Arc<dyn KeyProvider>>,
        registry: Option<Arc<Registry>>,
        config: &Config,
    ) -> Self {
        Lifecycle {
            pipeline,
            providers,
            registry,
            chains: config.chain_names(),
            config_keys: config.keys.clone(),
            audit_key: config.audit.signing_key,
            serial: Mutex::new(()),
        }
    }

    fn registry(&self, call: &str) -> Result<&Registry, Refused> {
        self.registry.as_deref().ok_or_else(|| {
            refused(
                Reason::NotConfigured,
                format!(
                    "{call} needs a key registry: add [registry] path = \"state/keys.json\" to the signer's config and restart it"
                ),
            )
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        // Guards no data: every change it serialises is durable before the guard drops.
        self.serial
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn chain_names(&self, ids: &[Checksum256]) -> Vec<String> {
        ids.iter()
            .filter_map(|id| self.chains.iter().find(|(_, c)| c == id))
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Audits the outcome (allowed or refused), logs it, and adds the audit position.
    fn finish<T>(
        &self,
        principal: &str,
        kind: AuditKind,
        requested: Option<PublicKey>,
        started: Instant,
        result: Result<Done<T>, Refused>,
    ) -> Result<(T, AuditEntryRef), Refused> {
        let (key, decision, reason, digest, signature) = match &result {
            Ok(d) => (
                Some(d.key),
                d.decision,
                d.reason.clone(),
                d.digest,
                d.signature,
            ),
            Err(r) => (
                requested,
                r.reason.audit_decision(),
                r.to_string(),
                None,
                None,
            ),
        };
        let record = AuditRecord {
            key: key.map(|k| k.to_string()),
            digest: digest.map(|d| d.to_string()),
            reason: Some(reason.chars().take(4000).collect()),
            latency_us: started.elapsed().as_micros() as u64,
            signature: signature.map(|s| s.to_string()),
            ..AuditRecord::new(sanitize_principal(principal), kind, decision)
        };
        // Only refusals are metered (and may be held); a change is always written.
        let audited = self.pipeline.audit.append_decision(record);
        match (result, audited) {
            (Ok(d), Ok(Some(at))) => {
                tracing::info!(principal, kind = kind.as_str(), key = %d.key, decision = decision.as_str(), detail = %reason, audit_seq = at.seq, "key lifecycle");
                Ok((d.value, at))
            }
            (Ok(_), audited) => {
                let e = audited
                    .err()
                    .map_or_else(|| "entry not written".into(), |e| e.to_string());
                tracing::error!(principal, kind = kind.as_str(), error = %e, "audit log write failed after a key lifecycle change");
                Err(refused(
                    Reason::Unavailable,
                    format!(
                        "audit log: {e}; the change itself is durable ({reason}): repeat the call once the log is fixed to get it recorded and answered"
                    ),
                ))
            }
            (Err(r), audited) => {
                if let Err(e) = audited {
                    tracing::error!(principal, kind = kind.as_str(), error = %e, "audit log write failed for a refused key lifecycle call");
                }
                tracing::warn!(principal, kind = kind.as_str(), reason = r.reason.as_str(), detail = %r.message, "refused");
                Err(r)
            }
        }
    }

    /// The `[audit] signing_key` that signs ceremony transcripts, if configured.
    pub fn transcript_key(&self) -> Option<PublicKey> {
        self.audit_key
    }

    /// GenerateKey. `req` is the decoded request or why it did not decode: either way the call
    /// is checked for an admin first and audited.
    pub fn generate_key(
        &self,
        principal: &str,
        req: Result<GenerateKey, Refused>,
    ) -> Result<(Generated, AuditEntryRef), Refused> {
        let started = Instant::now();
        let requested = req.as_ref().ok().and_then(|r| r.successor_of);
        let result = self
            .pipeline
            .admins
            .require(principal, "GenerateKey")
            .and_then(|()| self.generate_inner(req));
        self.finish(
            principal,
            AuditKind::GenerateKey,
            requested,
            started,
            result,
        )
    }

    fn generate_inner(
        &self,
        req: Result<GenerateKey, Refused>,
    ) -> Result<Done<Generated>, Refused> {
        let registry = self.registry("GenerateKey")?;
        let req = req?;
        let provider = self.providers.get(&req.backend).ok_or_else(|| {
            refused(
                Reason::Malformed,
                format!(
                    "backend: no backend named {:?} under [backends] (configured: {})",
                    req.backend,
                    self.providers
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?;
        let label = req.label.as_str();
        if label.is_empty() || label.len() > 64 || label.chars().any(|c| c.is_control()) {
            return Err(refused(
                Reason::Malformed,
                "label: give 1 to 64 printable characters",
            ));
        }
        let (kind, successor_of) = (req.key_type, req.successor_of);
        if successor_of.is_some() && successor_of == self.audit_key {
            return Err(refused(
                Reason::Malformed,
                "successor_of: the transcript key (audit.signing_key) has no successors; change the config to replace it",
            ));
        }
        let _serial = self.lock();

        // A label already registered: the same request again (a resumed ceremony).
        if let Some(rec) = registry.by_label(label) {
            if rec.backend != req.backend
                || rec.successor_of != successor_of
                || rec.key_type != kind
            {
                return Err(refused(
                    Reason::Malformed,
                    format!(
                        "label {label:?} is registered for {} ({} in backend {:?}, successor of {}): use another label, or repeat the original request",
                        rec.public_key,
                        rec.key_type.label(),
                        rec.backend,
                        rec.successor_of.map_or("nothing".into(), |k| k.to_string())
                    ),
                ));
            }
            let entry = self.pipeline.keys.get(&rec.public_key).ok_or_else(|| {
                refused(
                    Reason::Internal,
                    format!("{} is registered but not loaded", rec.public_key),
                )
            })?;
            return Ok(self.generated(
                entry,
                successor_of,
                AuditDecision::Existing,
                label,
                &req.backend,
            ));
        }

        // One active successor per key: a second one would be a second key signing for the
        // producer while the first ceremony is still open (abort that one first).
        if let Some(pred) = successor_of
            && let Some(other) = registry
                .entries()
                .into_iter()
                .find(|e| e.successor_of == Some(pred) && e.state == KeyState::Active)
        {
            return Err(refused(
                Reason::Malformed,
                format!(
                    "{pred} already has an active successor, {} (label {:?}): finish that rotation, or end it with `oryx ceremony rotate-producer abort --dir DIR` (RetireKey of {} without a successor), before starting another",
                    other.public_key, other.label, other.public_key
                ),
            ));
        }

        let (chains, blind_digest, retry, lineage) = match successor_of {
            Some(pred) => {
                let p = self.pipeline.keys.get(&pred).ok_or_else(|| {
                    refused(
                        Reason::UnknownKey,
                        format!("successor_of: this signer does not hold {pred}"),
                    )
                })?;
                if p.is_retired() {
                    return Err(refused(
                        Reason::KeyRetired,
                        format!("successor_of: {pred} is retired; name an active key"),
                    ));
                }
                (
                    p.chains.clone(),
                    p.blind_digest,
                    p.retry,
                    std::iter::once(pred)
                        .chain(p.predecessors.iter().copied())
                        .collect(),
                )
            }
            None => (
                self.new_key_chains(&req)?,
                req.blind_digest,
                Default::default(),
                Vec::new(),
            ),
        };

        // The device may hold the label already: a call whose answer (or registry write) was
        // lost. Register that key instead of making a second one.
        let on_device = provider
            .list()
            .map_err(|e| {
                refused(
                    Reason::Unavailable,
                    format!("backend {:?}: {e}", req.backend),
                )
            })?
            .into_iter()
            .find(|k| k.label == label);
        let (info, existing) = match on_device {
            Some(info) => {
                if info.public_key.kind() != kind {
                    return Err(refused(
                        Reason::Malformed,
                        format!(
                            "label {label:?} in backend {:?} holds {}, a {} key: use another label",
                            req.backend,
                            info.public_key,
                            info.public_key.kind().label()
                        ),
                    ));
                }
                if self.pipeline.keys.get(&info.public_key).is_some() {
                    return Err(refused(
                        Reason::Malformed,
                        format!(
                            "label {label:?} in backend {:?} holds {}, which this signer already uses: use another label",
                            req.backend, info.public_key
                        ),
                    ));
                }
                (info, true)
            }
            None => (
                provider.generate(label, kind).map_err(|e| {
                    refused(
                        Reason::Unavailable,
                        format!("backend {:?}: {e}", req.backend),
                    )
                })?,
                false,
            ),
        };
        let backend = provider.open(&info.public_key).map_err(|e| {
            refused(
                Reason::Unavailable,
                format!(
                    "backend {:?}: opening {}: {e}",
                    req.backend, info.public_key
                ),
            )
        })?;
        let entry = KeyEntry::new(backend, chains.clone(), blind_digest, retry)
            .with_lineage(lineage)
            .with_label(label, provider.kind());
        self_test(&entry).map_err(|e| refused(Reason::Internal, e))?;
        registry
            .put(RegistryEntry {
                public_key: info.public_key,
                backend: req.backend.clone(),
                label: label.to_string(),
                key_type: kind,
                chains: self.chain_names(&chains),
                blind_digest,
                same_height_retry: retry,
                successor_of,
                state: KeyState::Active,
                successor: None,
                created: crate::clock::now_secs().0,
                retired_at: None,
                source: Source::Generated,
            })
            .map_err(|e| refused(Reason::Unavailable, e.to_string()))?;
        let entry = self.pipeline.keys.insert(entry);
        self.held_keys_changed();
        Ok(self.generated(
            entry,
            successor_of,
            if existing {
                AuditDecision::Registered
            } else {
                AuditDecision::Generated
            },
            label,
            &req.backend,
        ))
    }

    /// Chains of a key generated without a predecessor, checked like `[[keys]]`.
    fn new_key_chains(&self, req: &GenerateKey) -> Result<Vec<Checksum256>, Refused> {
        if req.chains.is_empty() {
            return Err(refused(
                Reason::Malformed,
                "chains: list at least one chain (or give successor_of to inherit them)",
            ));
        }
        if req.blind_digest && req.chains.len() > 1 {
            return Err(refused(
                Reason::Malformed,
                "chains: a key that signs blind block digests may name only one chain (block digests do not include the chain id)",
            ));
        }
        req.chains
            .iter()
            .map(|name| {
                crate::config::resolve_chain(&self.chains, name).ok_or_else(|| {
                    refused(
                        Reason::Malformed,
                        format!(
                            "chains: {name:?} is not a configured chain (under [[chains]]: {})",
                            self.chains
                                .iter()
                                .map(|(n, _)| n.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    )
                })
            })
            .collect()
    }

    fn generated(
        &self,
        entry: Arc<KeyEntry>,
        successor_of: Option<PublicKey>,
        decision: AuditDecision,
        label: &str,
        backend: &str,
    ) -> Done<Generated> {
        let key = *entry.public_key();
        // Only a call that found its key already registered made nothing new.
        let existing = decision != AuditDecision::Generated;
        Done {
            value: Generated {
                entry,
                existing,
                successor_of,
            },
            key,
            decision,
            reason: format!(
                "label {label:?} in backend {backend:?}{}",
                successor_of.map_or(String::new(), |k| format!(", successor of {k}"))
            ),
            digest: None,
            signature: None,
        }
    }

    fn held_keys_changed(&self) {
        let keys = self
            .pipeline
            .keys
            .active()
            .iter()
            .map(|e| *e.public_key())
            .collect();
        self.pipeline.authz.set_held_keys(keys);
    }

    /// RetireKey. `req` is the decoded request or why it did not decode: either way the call is
    /// checked for an admin first and audited.
    pub fn retire_key(
        &self,
        principal: &str,
        req: Result<RetireKey, Refused>,
    ) -> Result<(Retired, AuditEntryRef), Refused> {
        let started = Instant::now();
        let requested = req.as_ref().ok().map(|r| r.key);
        let result = self
            .pipeline
            .admins
            .require(principal, "RetireKey")
            .and_then(|()| self.retire_inner(req));
        self.finish(principal, AuditKind::RetireKey, requested, started, result)
    }

    fn retire_inner(&self, req: Result<RetireKey, Refused>) -> Result<Done<Retired>, Refused> {
        let registry = self.registry("RetireKey")?;
        if self.pipeline.watermarks.shared() {
            // Stopping a key here does not stop it in the other replicas, which could then sign
            // a height the successor signs too.
            return Err(refused(
                Reason::NotConfigured,
                "RetireKey is not supported with signer replicas (a shared etcd watermark store) yet: stop the other replicas, or run the rotation on a single signer",
            ));
        }
        let RetireKey { key, successor } = req?;
        if Some(key) == self.audit_key || (successor.is_some() && successor == self.audit_key) {
            return Err(refused(
                Reason::Malformed,
                "the transcript key (audit.signing_key) cannot be retired or be a successor: change the config to replace it",
            ));
        }
        if successor == Some(key) {
            return Err(refused(
                Reason::Malformed,
                "successor: a key cannot succeed itself",
            ));
        }
        let _serial = self.lock();
        let entry = self.pipeline.keys.get(&key).ok_or_else(|| {
            refused(
                Reason::UnknownKey,
                format!("this signer does not hold {key}"),
            )
        })?;
        let recorded = registry.get(&key);
        if let Some(rec) = recorded.as_ref().filter(|r| r.state == KeyState::Retired) {
            if successor.is_some() && successor != rec.successor {
                return Err(refused(
                    Reason::KeyRetired,
                    format!(
                        "{key} is already retired with successor {}",
                        rec.successor.map_or("none".into(), |k| k.to_string())
                    ),
                ));
            }
            // Repeating the hand-over is harmless (it never lowers) and completes one that a
            // crash may have cut short.
            entry.retire();
            let handovers = self.hand_over(&key, rec.successor)?;
            return Ok(self.retired(key, rec.successor, handovers, true));
        }
        if let Some(s) = successor {
            let s_entry = self.pipeline.keys.get(&s).ok_or_else(|| {
                refused(
                    Reason::UnknownKey,
                    format!("successor: this signer does not hold {s}"),
                )
            })?;
            if s_entry.is_retired() {
                return Err(refused(
                    Reason::KeyRetired,
                    format!("successor: {s} is retired; name an active key"),
                ));
            }
        }
        // Stop the old key: in-flight requests finish, later ones are refused KEY_RETIRED.
        entry.retire();
        let handovers = self.hand_over(&key, successor)?;
        let now = crate::clock::now_secs().0;
        let rec = match recorded {
            Some(rec) => rec,
            None => self.config_entry(&entry).ok_or_else(|| {
                refused(
                    Reason::Internal,
                    format!("{key} is neither in the registry nor in the config"),
                )
            })?,
        };
        registry
            .put(RegistryEntry {
                state: KeyState::Retired,
                successor,
                retired_at: Some(now),
                ..rec
            })
            .map_err(|e| refused(Reason::Unavailable, format!("{e}; {key} is stopped until the signer restarts: repeat RetireKey to record it")))?;
        self.held_keys_changed();
        Ok(self.retired(key, successor, handovers, false))
    }

    /// The registry entry recording a `[[keys]]` key.
    fn config_entry(&self, entry: &KeyEntry) -> Option<RegistryEntry> {
        let k = self
            .config_keys
            .iter()
            .find(|k| k.public_key == *entry.public_key())?;
        Some(RegistryEntry::config_key(
            k,
            entry.label.clone(),
            crate::clock::now_secs().0,
        ))
    }

    /// Raises the successor's watermark on every chain the old key has one to at least the
    /// old key's (durably), and reports the successor's watermarks after.
    fn hand_over(
        &self,
        old: &PublicKey,
        successor: Option<PublicKey>,
    ) -> Result<Vec<Handover>, Refused> {
        let Some(successor) = successor else {
            return Ok(Vec::new());
        };
        let store = &self.pipeline.watermarks;
        let unavailable = |e: crate::watermark::StoreError| {
            refused(
                Reason::Unavailable,
                format!("watermark hand-over: {e}; {old} is stopped: repeat RetireKey"),
            )
        };
        // The old key is stopped (no request of it is between reserve and commit), so the
        // exported watermarks are final.
        let records = store.export().map_err(unavailable)?;
        let mut out = Vec::new();
        let p = &self.pipeline;
        // The old key's watermark on each chain (its identity's, or its producer's); a successor
        // it made signs under that very watermark already, another key gets it raised.
        for r in records
            .iter()
            .filter(|r| r.watermark_key() == p.watermark_key(r.chain_id, old))
        {
            let chain_id = r.chain_id;
            let to = p.watermark_key(chain_id, &successor);
            let after = if to == r.watermark_key() {
                r.watermark
            } else {
                store.raise(&to, old, &r.watermark).map_err(unavailable)?
            };
            tracing::info!(%old, %successor, %chain_id, block_num = after.block_num, slot = after.slot, "watermark handed over");
            out.push(Handover {
                chain_id,
                block_num: after.block_num,
                slot: after.slot,
            });
        }
        Ok(out)
    }

    fn retired(
        &self,
        key: PublicKey,
        successor: Option<PublicKey>,
        handovers: Vec<Handover>,
        already: bool,
    ) -> Done<Retired> {
        let moved: Vec<String> = handovers
            .iter()
            .map(|h| format!("{} at block {} slot {}", h.chain_id, h.block_num, h.slot))
            .collect();
        Done {
            reason: match successor {
                Some(s) => format!(
                    "successor {s}; watermarks handed over: {}",
                    if moved.is_empty() {
                        "none".into()
                    } else {
                        moved.join(", ")
                    }
                ),
                None => "no successor".into(),
            },
            value: Retired {
                handovers,
                already_retired: already,
            },
            key,
            decision: if already {
                AuditDecision::AlreadyRetired
            } else {
                AuditDecision::Retired
            },
            digest: None,
            signature: None,
        }
    }

    /// SignTranscript. `req` is the decoded request or why it did not decode: either way the call
    /// is checked for an admin first and audited.
    pub fn sign_transcript(
        &self,
        principal: &str,
        req: Result<SignTranscript, Refused>,
    ) -> Result<(TranscriptSigned, AuditEntryRef), Refused> {
        let started = Instant::now();
        let result = self
            .pipeline
            .admins
            .require(principal, "SignTranscript")
            .and_then(|()| self.transcript_inner(req));
        self.finish(
            principal,
            AuditKind::SignTranscript,
            self.audit_key,
            started,
            result,
        )
    }

    fn transcript_inner(
        &self,
        req: Result<SignTranscript, Refused>,
    ) -> Result<Done<TranscriptSigned>, Refused> {
        let key = self.audit_key.ok_or_else(|| {
            refused(
                Reason::NotConfigured,
                "SignTranscript needs a transcript key: add signing_key = \"PUB_...\" under [audit] (a [[keys]] entry with chains = []) and restart the signer",
            )
        })?;
        let SignTranscript { ceremony, head } = req?;
        let c = ceremony.as_str();
        if c.is_empty()
            || c.len() > MAX_CEREMONY_LEN
            || !c.bytes().all(|b| (0x20..0x7f).contains(&b))
        {
            return Err(refused(
                Reason::Malformed,
                format!("ceremony: give 1 to {MAX_CEREMONY_LEN} printable ASCII characters"),
            ));
        }
        let entry = self.pipeline.keys.get(&key).ok_or_else(|| {
            refused(
                Reason::Internal,
                format!("the transcript key {key} is not loaded"),
            )
        })?;
        let digest = transcript_digest(c, &head);
        let signed = entry
            .sign(&digest, SignOptions::default())
            .map_err(sign_failure)?;
        Ok(Done {
            value: TranscriptSigned {
                digest,
                signature: signed.signature,
                public_key: key,
            },
            key,
            decision: AuditDecision::Signed,
            reason: format!("ceremony {c:?}, head {head}"),
            digest: Some(digest),
            signature: Some(signed.signature),
        })
    }
}

/// The keys to serve: `[[keys]]` merged with the registry. A registry key that is retired is
/// kept (requests for it get KEY_RETIRED) without opening its device; an active one is opened
/// in its backend; every key gets its policy identity (the root of its `successor_of` chain).
/// Anything inconsistent stops the start with a message saying what to fix.
pub fn load_keys(
    config: &Config,
    providers: &BTreeMap<String, Arc<dyn KeyProvider>>,
    registry: Option<&Registry>,
) -> Result<Vec<KeyEntry>, String> {
    let recorded = registry.map(Registry::entries).unwrap_or_default();
    let where_ = registry.map_or(String::new(), |r| r.path().display().to_string());
    let rec = |k: &PublicKey| recorded.iter().find(|e| e.public_key == *k);
    let lineage = |k: &PublicKey| {
        registry::lineage(k, |k| rec(k).and_then(|e| e.successor_of))
            .map_err(|e| format!("key registry {where_}: {e}"))
    };
    // Labels as the devices know them, for ListKeys.
    let labels: BTreeMap<PublicKey, String> = providers
        .values()
        .filter_map(|p| p.list().ok())
        .flatten()
        .map(|info| (info.public_key, info.label))
        .collect();
    let chain_ids = |key: &PublicKey, names: &[String]| {
        names
            .iter()
            .map(|n| {
                config.chain_id(n).ok_or_else(|| {
                    format!(
                        "key {key}: chain {n:?} is not under [[chains]] (key registry {where_})"
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()
    };
    let mut out = Vec::new();
    let settings = config
        .keys
        .iter()
        .map(|k| {
            (
                k.public_key,
                k.backend.clone(),
                k.chains.clone(),
                k.blind_digest,
                k.same_height_retry,
            )
        })
        .chain(
            recorded
                .iter()
                .filter(|e| !config.keys.iter().any(|k| k.public_key == e.public_key))
                .map(|e| {
                    (
                        e.public_key,
                        e.backend.clone(),
                        e.chains.clone(),
                        e.blind_digest,
                        e.same_height_retry,
                    )
                }),
        );
    for (key, backend_name, chains, blind_digest, retry) in settings {
        let lineage = lineage(&key)?;
        if rec(&key).is_some_and(|e| e.state == KeyState::Retired) {
            out.push(KeyEntry::retired(key, lineage));
            continue;
        }
        let provider = providers.get(&backend_name).ok_or_else(|| {
            format!(
                "key {key} (key registry {where_}) names backend {backend_name:?}, which is not under [backends]: restore it in the config"
            )
        })?;
        let backend = provider
            .open(&key)
            .map_err(|e| format!("key {key} in backend {backend_name:?}: {e}"))?;
        let label = labels.get(&key).cloned().unwrap_or_default();
        out.push(
            KeyEntry::new(backend, chain_ids(&key, &chains)?, blind_digest, retry)
                .with_lineage(lineage)
                .with_label(label, provider.kind()),
        );
    }
    Ok(out)
}

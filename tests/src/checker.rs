//! The double-sign checker of the HA tests: every signature any replica released — in an answer,
//! or in any replica's audit log (which also holds answers a client never received) — must
//! recover to the producer key over its digest, and no height and no slot may carry two
//! different digests.
#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::HashMap;
use std::path::Path;

use oryx_proto::antelope::{Checksum256, PublicKey, Signature};

/// What the checker has seen.
#[derive(Debug)]
pub struct Checker {
    key: PublicKey,
    by_height: HashMap<u32, Checksum256>,
    by_slot: HashMap<u32, Checksum256>,
    /// Signatures checked.
    pub checked: usize,
    /// Every violation, described.
    pub violations: Vec<String>,
}

impl Checker {
    /// A checker for signatures of `key`.
    pub fn new(key: PublicKey) -> Self {
        Checker {
            key,
            by_height: HashMap::new(),
            by_slot: HashMap::new(),
            checked: 0,
            violations: Vec::new(),
        }
    }

    /// One released signature at `height` (and `slot`, when the request carried one).
    pub fn record(
        &mut self,
        source: &str,
        height: u32,
        slot: Option<u32>,
        digest: Checksum256,
        signature: &Signature,
    ) {
        self.checked += 1;
        if !signature.recovers_to(&digest, &self.key) {
            self.violations.push(format!(
                "{source}: a signature at height {height} does not recover to the key over {digest}"
            ));
        }
        let first = *self.by_height.entry(height).or_insert(digest);
        if first != digest {
            self.violations.push(format!(
                "{source}: height {height} signed for {first} and for {digest}"
            ));
        }
        if let Some(slot) = slot.filter(|s| *s > 0) {
            let first = *self.by_slot.entry(slot).or_insert(digest);
            if first != digest {
                self.violations.push(format!(
                    "{source}: slot {slot} signed for {first} and for {digest}"
                ));
            }
        }
    }

    /// Every block and digest signature in an audit log (signed or replayed).
    pub fn record_audit_log(&mut self, path: &Path) {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("audit log {}: {e}", path.display()));
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let kind = v["kind"].as_str().unwrap_or("");
            let decision = v["decision"].as_str().unwrap_or("");
            if !matches!(kind, "sign_block" | "sign_digest")
                || !matches!(decision, "signed" | "replayed")
            {
                continue;
            }
            let digest: Checksum256 = v["digest"].as_str().unwrap().parse().unwrap();
            let signature = Signature::parse(v["signature"].as_str().unwrap()).unwrap();
            // A Savanna block id carries its height in its first four bytes.
            let height = u32::from_be_bytes(digest.0[..4].try_into().unwrap());
            let slot = v["position"]["slot"].as_u64().map(|s| s as u32);
            self.record(
                &format!("audit {}", path.display()),
                height,
                slot,
                digest,
                &signature,
            );
        }
    }
}

//! The content-aware block assembler (`oryx-node produce`).
//!
//! Guards: every header it asks the signer to sign is a real Antelope header whose digest the
//! signer recomputes; every signature it appends to the block log verifies by recovery to the
//! configured key; a block from a followed log is adopted only after its signature, its link
//! to the head and its transaction merkle root check out.
//!
//! - [`assemble`]: headers, receipts and the pending-block file (pure, no I/O but the file).
//! - [`spool`]: the directory the relay drops signed transactions into.
//! - [`producer`]: the slot loop, failover (active/standby) and following other logs.
//! - [`handover`]: which key to sign with after a rotation retired the configured one.

use std::path::{Path, PathBuf};

use oryx_proto::antelope::chain::parse_chain_id;
use oryx_proto::antelope::{Checksum256, Name, PublicKey};
use serde::Deserialize;

use crate::NodeError;

pub mod assemble;
pub mod handover;
pub mod producer;
pub mod spool;
pub mod stats;

/// `[produce]` in `oryx-node.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProduceConfig {
    /// The chain (name or 64 hex characters).
    pub chain_id: String,
    /// The producer account.
    pub producer: String,
    /// The producer's block-signing key (held by the signer).
    pub public_key: String,
    /// Directory of the block log.
    pub block_log: PathBuf,
    /// Directory the relay drops transactions into.
    pub spool: Option<PathBuf>,
    /// Legacy (pre-Savanna) headers instead of Savanna.
    #[serde(default)]
    pub legacy: bool,
    /// Legacy mode: the producer schedule version put in headers.
    #[serde(default = "default_schedule_version")]
    pub schedule_version: u32,
    /// Block logs of the other producer instances (standing in for p2p).
    #[serde(default)]
    pub follow: Vec<PathBuf>,
    /// Slots without a new block before a standby instance tries to take over.
    #[serde(default = "default_takeover_slots")]
    pub takeover_slots: u32,
    /// Most transactions per block.
    #[serde(default = "default_max_transactions")]
    pub max_transactions: usize,
    /// CPU billed per transaction in receipts (this assembler does not execute contracts).
    #[serde(default = "default_cpu_usage_us")]
    pub cpu_usage_us: u32,
    /// The id the first block builds on (64 hex); by default one derived from the chain id, at
    /// block 1, so every instance of a fresh test chain agrees on it.
    pub genesis_id: Option<String>,
}

fn default_schedule_version() -> u32 {
    1
}
fn default_takeover_slots() -> u32 {
    6
}
fn default_max_transactions() -> usize {
    500
}
fn default_cpu_usage_us() -> u32 {
    100
}

/// Which header format is produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Savanna: `schedule_version` 0x8000_0000, a finality extension, the block id is signed.
    Savanna,
    /// Legacy: a configured schedule version, the legacy `sig_digest` is signed.
    Legacy {
        /// The schedule version in headers.
        schedule_version: u32,
    },
}

/// `[produce]` parsed into typed values.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Chain id.
    pub chain_id: Checksum256,
    /// Producer account.
    pub producer: Name,
    /// Block-signing key.
    pub key: PublicKey,
    /// Block log directory.
    pub block_log: PathBuf,
    /// Spool directory.
    pub spool: Option<PathBuf>,
    /// Header format.
    pub mode: Mode,
    /// Followed block log directories.
    pub follow: Vec<PathBuf>,
    /// Quiet slots before a takeover attempt.
    pub takeover_slots: u32,
    /// Most transactions per block.
    pub max_transactions: usize,
    /// CPU billed per transaction.
    pub cpu_usage_us: u32,
    /// The parent of the first block.
    pub genesis: Checksum256,
}

impl ProduceConfig {
    /// Makes relative paths relative to `base`, and checks values.
    pub fn resolve(&mut self, base: &Path) -> Result<(), NodeError> {
        for p in [&mut self.block_log]
            .into_iter()
            .chain(self.spool.as_mut())
            .chain(self.follow.iter_mut())
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        self.settings().map(|_| ())
    }

    /// The typed settings, or what is wrong and how to fix it.
    pub fn settings(&self) -> Result<Settings, NodeError> {
        let chain_id = parse_chain_id(&self.chain_id).map_err(|e| {
            NodeError::Config(format!(
                "[produce] chain_id = {:?}: {e} (a chain name such as eos, or 64 hex characters)",
                self.chain_id
            ))
        })?;
        let producer = Name::new(&self.producer).map_err(|e| {
            NodeError::Config(format!("[produce] producer = {:?}: {e}", self.producer))
        })?;
        let key = PublicKey::parse(&self.public_key).map_err(|e| {
            NodeError::Config(format!(
                "[produce] public_key = {:?}: {e} (the PUB_K1_/EOS key the signer holds)",
                self.public_key
            ))
        })?;
        if self.takeover_slots == 0 {
            return Err(NodeError::Config(
                "[produce] takeover_slots must be at least 1".into(),
            ));
        }
        if self.max_transactions == 0 {
            return Err(NodeError::Config(
                "[produce] max_transactions must be at least 1".into(),
            ));
        }
        if self.legacy
            && self.schedule_version == oryx_proto::antelope::block::SAVANNA_SCHEDULE_VERSION
        {
            return Err(NodeError::Config("[produce] schedule_version 0x80000000 marks Savanna headers; pick a legacy version".into()));
        }
        if self.follow.iter().any(|f| f == &self.block_log) {
            return Err(NodeError::Config(
                "[produce] follow lists this instance's own block_log".into(),
            ));
        }
        let genesis = match &self.genesis_id {
            Some(h) => Checksum256::from_hex(h).map_err(|e| {
                NodeError::Config(format!("[produce] genesis_id: {e} (64 hex characters)"))
            })?,
            None => default_genesis(&chain_id),
        };
        Ok(Settings {
            chain_id,
            producer,
            key,
            block_log: self.block_log.clone(),
            spool: self.spool.clone(),
            mode: if self.legacy {
                Mode::Legacy {
                    schedule_version: self.schedule_version,
                }
            } else {
                Mode::Savanna
            },
            follow: self.follow.clone(),
            takeover_slots: self.takeover_slots,
            max_transactions: self.max_transactions,
            cpu_usage_us: self.cpu_usage_us,
            genesis,
        })
    }
}

/// Block 1 of a test chain: `BE32(1) ‖ sha256("oryx genesis" ‖ chain_id)[4..]`.
pub fn default_genesis(chain_id: &Checksum256) -> Checksum256 {
    let mut id = Checksum256::hash_parts(&[b"oryx genesis", &chain_id.0]);
    id.0[..4].copy_from_slice(&1u32.to_be_bytes());
    id
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const KEY: &str = "EOS6MRyAjQq8ud7hVNYcfnVPJqcVpscN5So8BhtHuGYqET5GDW5CV";

    fn cfg(extra: &str) -> Result<Settings, NodeError> {
        let text = format!(
            "chain_id = \"eos\"\nproducer = \"oryxproducer\"\npublic_key = \"{KEY}\"\nblock_log = \"blocks\"\n{extra}"
        );
        let mut c: ProduceConfig =
            toml::from_str(&text).map_err(|e| NodeError::Config(e.to_string()))?;
        c.resolve(Path::new("/srv/oryx"))?;
        c.settings()
    }

    #[test]
    fn defaults_and_paths() {
        let s = cfg("follow = [\"../other/blocks\"]\nspool = \"spool\"\n").unwrap();
        assert_eq!(s.mode, Mode::Savanna);
        assert_eq!(s.block_log, Path::new("/srv/oryx/blocks"));
        assert_eq!(s.follow, vec![PathBuf::from("/srv/oryx/../other/blocks")]);
        assert_eq!(oryx_proto::antelope::block::num_from_id(&s.genesis), 1);
        assert_eq!(s.takeover_slots, 6);
        let l = cfg("legacy = true\nschedule_version = 3\n").unwrap();
        assert_eq!(
            l.mode,
            Mode::Legacy {
                schedule_version: 3
            }
        );
    }

    #[test]
    fn bad_values_are_refused_with_a_reason() {
        for (extra, want) in [
            ("takeover_slots = 0\n", "takeover_slots"),
            ("follow = [\"blocks\"]\n", "own block_log"),
            ("genesis_id = \"xyz\"\n", "genesis_id"),
            ("legacy = true\nschedule_version = 2147483648\n", "Savanna"),
            ("speed = 3\n", "unknown field"),
        ] {
            let err = cfg(extra).unwrap_err().to_string();
            assert!(err.contains(want), "{extra}: {err}");
        }
    }
}

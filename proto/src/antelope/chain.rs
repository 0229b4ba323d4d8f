//! Chain ids: the known public chains, and the id computed from a genesis file
//! (`sha256(pack(genesis_state))`).
//!
//! Guards: a chain id mixed into every transaction digest is what stops a signature for one
//! chain being replayed on another; an operator can name a chain or derive its id from its
//! genesis instead of pasting 64 hex characters.

use serde::Deserialize;

use super::codec::Pack;
use super::{Checksum256, PublicKey, TimePoint};
use crate::{Error, Result};

/// Well-known chains: (name, chain id).
pub const KNOWN_CHAINS: &[(&str, &str)] = &[
    (
        "eos",
        "aca376f206b8fc25a6ed44dbdc66547c36c6c33e3a119ffbeaef943642f0e906",
    ),
    (
        "jungle4",
        "73e4385a2708e6d7048834fbc1079f2fabb17b3c125b146af438971e90716c4d",
    ),
    (
        "kylin",
        "5fff1dae8dc8e2fc4d5b23b2c7665c97f9e9d8edf2b6485a86ba311c25639191",
    ),
    (
        "wax",
        "1064487b3cd1a897ce03ae5b6a865651747e2e152090f99c1d19d44e01aea5a4",
    ),
    (
        "telos",
        "4667b205c6838ef70ff7988f6e8257e8be0e1284a2f59699054a018f743b1d11",
    ),
];

/// Parses a chain id given as 64 hex characters or as a known chain's name (`eos`, `jungle4`,
/// `kylin`, `wax`, `telos`; `vaulta` is an alias of `eos`).
pub fn parse_chain_id(text: &str) -> Result<Checksum256> {
    let lower = text.trim().to_ascii_lowercase();
    let name = if lower == "vaulta" {
        "eos"
    } else {
        lower.as_str()
    };
    if let Some((_, id)) = KNOWN_CHAINS.iter().find(|(n, _)| *n == name) {
        return Checksum256::from_hex(id);
    }
    Checksum256::from_hex(text).map_err(|_| Error::Hex {
        what: "chain id",
        detail: "expected 64 hex characters or one of eos, jungle4, kylin, wax, telos".into(),
    })
}

/// The name of a known chain id, if any.
pub fn chain_name(id: &Checksum256) -> Option<&'static str> {
    let hex = id.to_string();
    KNOWN_CHAINS
        .iter()
        .find(|(_, h)| *h == hex)
        .map(|(n, _)| *n)
}

/// `chain_config_v0`, the initial configuration in a genesis file.
#[derive(Debug, Clone, Deserialize)]
#[allow(missing_docs)]
pub struct ChainConfigV0 {
    pub max_block_net_usage: u64,
    pub target_block_net_usage_pct: u32,
    pub max_transaction_net_usage: u32,
    pub base_per_transaction_net_usage: u32,
    pub net_usage_leeway: u32,
    pub context_free_discount_net_usage_num: u32,
    pub context_free_discount_net_usage_den: u32,
    pub max_block_cpu_usage: u32,
    pub target_block_cpu_usage_pct: u32,
    pub max_transaction_cpu_usage: u32,
    pub min_transaction_cpu_usage: u32,
    pub max_transaction_lifetime: u32,
    pub deferred_trx_expiration_window: u32,
    pub max_transaction_delay: u32,
    pub max_inline_action_size: u32,
    pub max_inline_action_depth: u16,
    pub max_authority_depth: u16,
}

impl Pack for ChainConfigV0 {
    fn pack(&self, out: &mut Vec<u8>) {
        self.max_block_net_usage.pack(out);
        for v in [
            self.target_block_net_usage_pct,
            self.max_transaction_net_usage,
            self.base_per_transaction_net_usage,
            self.net_usage_leeway,
            self.context_free_discount_net_usage_num,
            self.context_free_discount_net_usage_den,
            self.max_block_cpu_usage,
            self.target_block_cpu_usage_pct,
            self.max_transaction_cpu_usage,
            self.min_transaction_cpu_usage,
            self.max_transaction_lifetime,
            self.deferred_trx_expiration_window,
            self.max_transaction_delay,
            self.max_inline_action_size,
        ] {
            v.pack(out);
        }
        self.max_inline_action_depth.pack(out);
        self.max_authority_depth.pack(out);
    }
}

/// A `genesis.json`: the chain id is the hash of its packing. Fields added by later versions
/// of the file format (e.g. `max_ram_size`) are not part of the packing and are ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct Genesis {
    /// Time of the first block.
    pub initial_timestamp: TimePoint,
    /// Key of the `eosio` account at genesis (any legacy prefix, e.g. `EOS` or `FIO`).
    #[serde(deserialize_with = "any_prefix_key")]
    pub initial_key: PublicKey,
    /// Initial chain configuration.
    pub initial_configuration: ChainConfigV0,
}

fn any_prefix_key<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<PublicKey, D::Error> {
    let s = String::deserialize(d)?;
    let prefix: String = if s.starts_with("PUB_") {
        "EOS".into()
    } else {
        s.chars().take_while(char::is_ascii_uppercase).collect()
    };
    PublicKey::parse_with_legacy_prefix(&s, &prefix).map_err(serde::de::Error::custom)
}

impl Genesis {
    /// Parses a genesis JSON document.
    pub fn from_json(text: &str) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| Error::Json(format!("genesis: {e}")))
    }

    /// The chain id: `sha256(pack(genesis_state))`.
    pub fn chain_id(&self) -> Checksum256 {
        Checksum256::hash(&self.packed())
    }
}

impl Pack for Genesis {
    fn pack(&self, out: &mut Vec<u8>) {
        self.initial_timestamp.pack(out);
        self.initial_key.pack(out);
        self.initial_configuration.pack(out);
    }
}

//! What the policy is asked about: the authenticated principal, the key, the chain, the caller's
//! clock reading and the decoded request body — plain data, built by the signer.
//!
//! Guards: the policy sees the request exactly as the signer will sign it. The signer decodes the
//! transaction (or block header) it recomputes the digest from and hands that very value here, so
//! the decision can never be about different bytes than the signature.

use std::fmt;

use oryx_proto::antelope::transaction::Transaction;
use oryx_proto::antelope::{Checksum256, Name, PublicKey, TimePointSec};

/// One signing request, as the policy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The authenticated identity of the caller (from its mTLS client certificate).
    pub principal: String,
    /// The key asked to sign.
    pub key: PublicKey,
    /// The chain the signature is for.
    pub chain_id: Checksum256,
    /// The caller's clock reading; the policy never reads a clock itself.
    pub now: TimePointSec,
    /// What is to be signed.
    pub body: Body,
}

/// What is to be signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// A block header (content-aware block signing).
    Block {
        /// Height of the block.
        block_num: u32,
        /// The producer named in the header.
        producer: Name,
    },
    /// A blind 32-byte digest: nothing is known about its content.
    Digest,
    /// A decoded transaction.
    Transaction {
        /// The transaction, uncompressed and decoded.
        trx: Transaction,
        /// Whether context-free data is part of the signing digest.
        has_context_free_data: bool,
        /// The proposed transaction of each `eosio.msig::approve` in `trx.actions`, in action
        /// order. The signer has checked that each hashes to its approve's `proposal_hash`
        /// (the policy checks it again, see `msig_proposed_actions`).
        msig_proposals: Vec<Transaction>,
    },
}

impl Body {
    /// The request kind this body is.
    pub fn kind(&self) -> Kind {
        match self {
            Body::Block { .. } => Kind::Block,
            Body::Digest => Kind::Digest,
            Body::Transaction { .. } => Kind::Transaction,
        }
    }

    /// The block-signing keys the transaction would register on chain: the producer key of
    /// every `eosio::regproducer` and each key of every `eosio::regproducer2` authority, in
    /// the transaction and in the proposals its msig approves. Actions whose data does not
    /// decode name nothing here (the policy refuses them on its own).
    pub fn producer_keys(&self) -> Vec<PublicKey> {
        use oryx_proto::antelope::actions::{BlockSigningAuthority, SystemAction};
        let Body::Transaction {
            trx,
            msig_proposals,
            ..
        } = self
        else {
            return Vec::new();
        };
        std::iter::once(trx)
            .chain(msig_proposals)
            .flat_map(|t| &t.actions)
            .filter_map(|a| SystemAction::decode(a.account, a.name, &a.data.0)?.ok())
            .flat_map(|a| match a {
                SystemAction::RegProducer(p) => vec![p.producer_key],
                SystemAction::RegProducer2(p) => {
                    let BlockSigningAuthority::V0(auth) = p.producer_authority;
                    auth.keys.iter().map(|k| k.key).collect()
                }
                _ => Vec::new(),
            })
            .collect()
    }
}

/// A request kind, as named in the policy file's `kinds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// `block`: a block header.
    Block,
    /// `transaction`: a decoded transaction.
    Transaction,
    /// `digest`: a blind digest.
    Digest,
}

impl Kind {
    /// Every kind, in file order.
    pub const ALL: [Kind; 3] = [Kind::Block, Kind::Transaction, Kind::Digest];

    /// The name used in policy files: `block`, `transaction` or `digest`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Block => "block",
            Kind::Transaction => "transaction",
            Kind::Digest => "digest",
        }
    }

    /// Parses a name used in policy files.
    pub fn parse(text: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Facts about the signer the policy may consult, supplied by the caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    /// Public keys the signer holds (for `regproducer = { held_keys_only = true }`).
    pub held_keys: Vec<PublicKey>,
}

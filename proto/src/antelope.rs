//! The Antelope binary formats and digests, exactly as nodeos computes them.
//!
//! Guards: byte-exactness. Every digest Oryx signs or shows an approver is recomputed here from
//! its preimage with the same packing nodeos uses, and checked against real-chain vectors.

pub mod actions;
pub mod asset;
pub mod block;
pub mod carried;
pub mod chain;
pub mod checksum;
pub mod codec;
pub mod keys;
pub mod merkle;
pub mod name;
pub mod signature;
pub mod signed_block;
pub mod tapos;
pub mod time;
pub mod transaction;

pub use actions::{PermissionLevel, SystemAction};
pub use asset::{Asset, Symbol};
pub use checksum::Checksum256;
pub use codec::{Bytes, Pack, Reader, Unpack, VarUint32};
pub use keys::{KeyType, PrivateKey, PublicKey};
pub use name::Name;
pub use signature::Signature;
pub use time::{BlockTimestamp, TimePoint, TimePointSec};

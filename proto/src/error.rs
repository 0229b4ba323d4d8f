//! The one error type of `oryx-proto`. Messages name what was wrong and never contain key
//! material: a rejected private key string is described, not echoed.

/// What went wrong while decoding, parsing or encoding an Antelope value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input ended before a value was complete.
    #[error("truncated input: {what} needs {needed} more byte(s), {available} left")]
    Truncated {
        /// The value being read.
        what: &'static str,
        /// Bytes the value needs.
        needed: usize,
        /// Bytes that were left.
        available: usize,
    },
    /// A value decoded, but bytes were left over.
    #[error("{count} trailing byte(s) after {what}")]
    TrailingBytes {
        /// The value that was decoded.
        what: &'static str,
        /// How many bytes were left.
        count: usize,
    },
    /// A length or count is impossible for the input or above a limit.
    #[error("{what}: length {len} exceeds the limit of {max}")]
    TooLong {
        /// The value whose length was read.
        what: &'static str,
        /// The length found.
        len: usize,
        /// The largest acceptable length.
        max: usize,
    },
    /// A varuint32 that overflows 32 bits or is not minimally encoded.
    #[error("invalid varuint32: more than 32 bits or not minimally encoded")]
    VarUint,
    /// A value outside the set a field allows (a bool byte other than 0/1, an unknown variant).
    #[error("invalid {what}: {detail}")]
    Invalid {
        /// The field or type.
        what: &'static str,
        /// What was wrong with it.
        detail: String,
    },
    /// An account or action name that `eosio::chain::name` would reject.
    #[error("invalid name {name:?}: {reason}")]
    Name {
        /// The rejected string.
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// An asset or symbol string that does not parse.
    #[error("invalid asset {text:?}: {reason}")]
    Asset {
        /// The rejected string.
        text: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A key string or key bytes that are rejected. Never includes the key itself.
    #[error("invalid {kind} key: {reason}")]
    Key {
        /// "public" or "private".
        kind: &'static str,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A signature string or signature bytes that are rejected, or a signature that does not
    /// recover to a key.
    #[error("invalid signature: {0}")]
    Signature(&'static str),
    /// Hex text that does not decode, or decodes to the wrong length.
    #[error("invalid hex for {what}: {detail}")]
    Hex {
        /// The field.
        what: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// A time string that does not parse or is out of range.
    #[error("invalid time {text:?}: {reason}")]
    Time {
        /// The rejected string.
        text: String,
        /// Why.
        reason: &'static str,
    },
    /// JSON that does not describe the expected value.
    #[error("invalid JSON: {0}")]
    Json(String),
    /// zlib data that does not inflate, or inflates past the size limit.
    #[error("invalid compressed data: {0}")]
    Compression(String),
}

impl Error {
    pub(crate) fn invalid(what: &'static str, detail: impl Into<String>) -> Self {
        Error::Invalid {
            what,
            detail: detail.into(),
        }
    }
}

//! [`ListenToken`]: what the loopback TCP listener demands, since any local user can open it.
//!
//! Guards: a request on the TCP listener is served only if its path starts with `/<token>/`
//! (nodeos sends the whole `KEOSD:` URL it is given, so the token goes there:
//! `KEOSD:http://127.0.0.1:8900/<token>/v1/wallet/sign_digest`); the comparison takes the same
//! time wherever it differs; the token comes from a file only its owner can read, holds 32 to
//! 128 URL-safe characters, is zeroized on drop and never printed or echoed back.

use std::path::Path;

use zeroize::Zeroizing;

use crate::error::NodeError;

/// Fewest characters a token may have (32 hex characters are 128 bits).
pub const MIN_LEN: usize = 32;
/// Most characters a token may have.
pub const MAX_LEN: usize = 128;

/// The token of the TCP listener.
pub struct ListenToken(Zeroizing<String>);

impl std::fmt::Debug for ListenToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ListenToken(<redacted>)")
    }
}

impl ListenToken {
    /// Reads the token from `path` (trimmed), refusing a file others can read and a token that
    /// is short or not URL-safe. Errors name the file, never the content.
    pub fn from_file(path: &Path) -> Result<Self, NodeError> {
        let bad = |why: String| {
            NodeError::Config(format!(
                "[bridge] listen_token_file {}: {why}",
                path.display()
            ))
        };
        oryx_proto::durable::private_file_mode(path).map_err(|mode| {
            bad(format!(
                "open to other users (mode {mode:03o}): `chmod 600` it (any local user who reads \
                 it can sign through the listener)"
            ))
        })?;
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?);
        Self::new(text.trim()).map_err(bad)
    }

    /// The token `value`, checked.
    pub fn new(value: &str) -> Result<Self, String> {
        let ok = (MIN_LEN..=MAX_LEN).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return Err(format!(
                "the token must be {MIN_LEN} to {MAX_LEN} letters, digits, '-' or '_' (e.g. \
                 `openssl rand -hex 32`)"
            ));
        }
        Ok(ListenToken(Zeroizing::new(value.to_owned())))
    }

    /// The token itself, for a client that must put it in its URL (never print it).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The rest of `path` after `/<token>` (starting with `/`), or `None` if `path` does not
    /// start with the token.
    pub fn strip<'a>(&self, path: &'a str) -> Option<&'a str> {
        let token = self.0.as_bytes();
        let given = path.strip_prefix('/')?;
        let end = given.find('/').unwrap_or(given.len());
        let (head, rest) = given.split_at(end);
        let same = head.len() == token.len()
            && head
                .bytes()
                .zip(token)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        (same && rest.starts_with('/')).then_some(rest)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const T: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn only_the_exact_token_as_first_segment_opens_the_path() {
        let t = ListenToken::new(T).unwrap();
        assert_eq!(
            t.strip(&format!("/{T}/v1/wallet/sign_digest")),
            Some("/v1/wallet/sign_digest")
        );
        assert_eq!(t.strip("/v1/wallet/sign_digest"), None);
        assert_eq!(t.strip(&format!("/{T}")), None);
        assert_eq!(t.strip(&format!("/{T}x/v1/wallet/sign_digest")), None);
        assert_eq!(t.strip(&format!("/{}/v1", &T[1..])), None);
        assert_eq!(t.strip(&format!("//{T}/v1")), None);
        assert_eq!(t.strip(""), None);
        assert!(!format!("{t:?}").contains(T));
    }

    #[test]
    fn weak_or_exposed_tokens_are_refused() {
        assert!(ListenToken::new("short").is_err());
        assert!(ListenToken::new(&format!("{T}/x")).is_err());
        assert!(ListenToken::new(&"a".repeat(MAX_LEN + 1)).is_err());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, format!("{T}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = ListenToken::from_file(&path).unwrap_err().to_string();
        assert!(e.contains("chmod 600") && !e.contains(T), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let t = ListenToken::from_file(&path).unwrap();
        assert!(t.strip(&format!("/{T}/v1/wallet/list_keys")).is_some());
    }
}

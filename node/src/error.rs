//! [`NodeError`]: the one error type of `oryx-node`.
//!
//! Guards: every failure a caller can act on has its own variant (fix the configuration, stop
//! the other bridge, check the signer, repair the block log, …), and refusals of untrusted input
//! (a followed block that does not verify, a spool file that can never be included) are kept
//! apart from failures of this host. `main` prints any of them as one line on stderr, prefixed
//! `oryx-node: `, and exits non-zero. The node holds no key material, so no message can carry
//! any; messages name files, addresses and keys' public halves only.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use oryx_proto::antelope::Checksum256;
use oryx_proto::blocklog::BlockLogError;

/// What went wrong in `oryx-node`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The configuration file cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    ConfigRead {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A configuration value or section is wrong; the message says which and how to fix it.
    #[error("{0}")]
    Config(String),
    /// The configuration file at `path` is wrong (a [`NodeError::Config`] problem, or a section
    /// the command needs is missing).
    #[error("{}: {problem}", path.display())]
    ConfigFile {
        /// The file.
        path: PathBuf,
        /// What is wrong and how to fix it.
        problem: String,
    },
    /// The mTLS client files named in `[signer]` cannot be read.
    #[error("{0}")]
    ClientTls(String),
    /// A command-line argument is wrong, or asks for something refused without an override.
    #[error("{0}")]
    Usage(String),

    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] io::Error),
    /// A TCP listener (loopback wallet API or metrics) could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// A file-system operation on `path` failed (`{action} {path}: {source}`).
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. `cannot bind`.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The unix socket's place is unsafe or unusable (a directory others could write to, a
    /// planted lock file, a non-socket at the path): choose another path or fix the directory.
    #[error("{0}")]
    Socket(String),
    /// Another bridge, or another process, serves the unix socket: stop it first.
    #[error("{0}")]
    SocketInUse(String),

    /// The signer is not connected now (the background task keeps reconnecting).
    #[error("signer unreachable")]
    SignerUnreachable,
    /// A connection to the signer could not be made.
    #[error("{0}")]
    SignerConnect(String),
    /// A call to the signer failed or was refused.
    #[error("{call}: {message}")]
    SignerCall {
        /// The call, e.g. `ListKeys` or `SignDigest at height 7`.
        call: String,
        /// The gRPC status code.
        code: tonic::Code,
        /// The status message (with the signer's reason when it refused).
        message: String,
    },

    /// An Antelope value does not encode or decode (a header's digest, a block's id).
    #[error(transparent)]
    Format(#[from] oryx_proto::Error),
    /// The block log cannot be opened, read or appended to.
    #[error(transparent)]
    BlockLog(#[from] BlockLogError),
    /// The block log belongs to another chain (or another `genesis_id`).
    #[error(
        "{}: the log starts at a block whose parent is {parent}, not this chain's genesis {genesis} \
         (another chain's log, or a different genesis_id): point block_log at an empty directory",
        dir.display()
    )]
    ForeignBlockLog {
        /// The block log directory.
        dir: PathBuf,
        /// The parent of the log's first block.
        parent: Checksum256,
        /// This chain's genesis id.
        genesis: Checksum256,
    },
    /// A block from elsewhere (a followed log, a replayed pending block) that does not continue
    /// the head or does not verify: refused, not adopted.
    #[error("{0}")]
    Unverified(String),
    /// The pending-block file cannot be written, removed or read.
    #[error("{}: {problem}", path.display())]
    PendingBlock {
        /// The file (or its temporary file or directory).
        path: PathBuf,
        /// What failed.
        problem: String,
    },
    /// The spool directory cannot be created.
    #[error("spool {}: cannot create it: {source}", path.display())]
    Spool {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A spool file that can never be included (does not decode, expired, unsigned, …): refused.
    #[error("{0}")]
    BadTransaction(String),

    /// The keosd endpoint (the bridge as nodeos reaches it) cannot be reached, or answered in a
    /// way nodeos would not understand.
    #[error("{0}")]
    Keosd(String),
    /// A benchmark measurement failed.
    #[error("{0}")]
    Bench(String),
}

impl NodeError {
    /// An [`NodeError::Io`] maker for `map_err`: `.map_err(NodeError::io("cannot stat", &p))`.
    pub fn io(action: &'static str, path: &std::path::Path) -> impl FnOnce(io::Error) -> Self {
        let path = path.to_path_buf();
        move |source| NodeError::Io {
            action,
            path,
            source,
        }
    }

    /// A [`NodeError::SignerCall`] from a failed gRPC call.
    pub fn signer_call(call: impl Into<String>, status: &tonic::Status) -> Self {
        NodeError::SignerCall {
            call: call.into(),
            code: status.code(),
            message: status.message().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_file_and_keep_their_text() {
        let io = NodeError::io("cannot bind", std::path::Path::new("/run/x.sock"))(
            io::ErrorKind::PermissionDenied.into(),
        );
        assert_eq!(io.to_string(), "cannot bind /run/x.sock: permission denied");
        let file = NodeError::ConfigFile {
            path: "/etc/oryx/oryx-node.toml".into(),
            problem: NodeError::Config("[bridge] nodeos_timeout_ms must be at least 1".into())
                .to_string(),
        };
        assert_eq!(
            file.to_string(),
            "/etc/oryx/oryx-node.toml: [bridge] nodeos_timeout_ms must be at least 1"
        );
        // The `/healthz` body while the signer is down.
        assert_eq!(
            NodeError::SignerUnreachable.to_string(),
            "signer unreachable"
        );
        let call = NodeError::signer_call("ListKeys", &tonic::Status::unavailable("down"));
        assert_eq!(call.to_string(), "ListKeys: down");
    }
}

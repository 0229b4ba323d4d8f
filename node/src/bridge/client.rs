//! A keosd client that speaks exactly as nodeos does: fc's `http_client` over `unix://` or
//! `http://`, Boost.Beast's request headers, one kept-alive connection. Used by
//! `oryx-node bench` and the tests to drive the bridge the way production does.
//!
//! Guards: the measurements and tests see what nodeos sees, including the socket-path discovery
//! for `unix://` URLs (the longest prefix of the URL that is a socket).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use oryx_proto::antelope::{Checksum256, PublicKey};

use crate::NodeError;

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// One connection to a keosd-compatible endpoint.
pub struct KeosdClient {
    stream: Box<dyn Stream>,
    host: String,
    /// The request path from the URL (e.g. `/v1/wallet/sign_digest`).
    pub path: String,
}

/// An HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The response head, lower-cased.
    pub head: String,
    /// The body.
    pub body: String,
}

/// Largest response head or body read.
const MAX_RESPONSE: usize = 4 << 20;

impl KeosdClient {
    /// Connects to a nodeos `KEOSD:` URL: `unix:///path/to/sock/v1/wallet/sign_digest` (the
    /// socket is the longest prefix that is a socket, as fc finds it) or
    /// `http://host:port/v1/wallet/sign_digest`.
    pub fn connect(url: &str) -> Result<KeosdClient, NodeError> {
        if let Some(rest) = url.strip_prefix("unix://") {
            use std::os::unix::fs::FileTypeExt as _;
            let mut socket = PathBuf::from(rest);
            if socket.is_relative() {
                return Err(NodeError::Keosd(format!(
                    "socket url cannot be relative ({rest})"
                )));
            }
            let mut tail: Vec<String> = Vec::new();
            while !std::fs::metadata(&socket).is_ok_and(|m| m.file_type().is_socket()) {
                let Some(name) = socket.file_name().map(|n| n.to_string_lossy().into_owned())
                else {
                    return Err(NodeError::Keosd(format!(
                        "couldn't discover a socket path in {url}"
                    )));
                };
                tail.insert(0, name);
                socket.pop();
            }
            let stream = UnixStream::connect(&socket)
                .map_err(|e| NodeError::Keosd(format!("connect to {}: {e}", socket.display())))?;
            Ok(KeosdClient {
                stream: Box::new(stream),
                host: socket.to_string_lossy().into_owned(),
                path: format!("/{}", tail.join("/")),
            })
        } else if let Some(rest) = url.strip_prefix("http://") {
            let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
            let stream = std::net::TcpStream::connect(host)
                .map_err(|e| NodeError::Keosd(format!("connect to {host}: {e}")))?;
            let _ = stream.set_nodelay(true);
            Ok(KeosdClient {
                stream: Box::new(stream),
                host: host.to_string(),
                path: format!("/{path}"),
            })
        } else {
            Err(NodeError::Keosd(format!(
                "{url}: nodeos reaches keosd over unix:// or http:// only"
            )))
        }
    }

    /// One POST on the kept-alive connection, as Boost.Beast writes it for fc's `post_sync`.
    pub fn post(&mut self, path: &str, body: &str) -> Result<Answer, NodeError> {
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: Boost.Beast/345\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.host,
            body.len()
        );
        self.stream
            .write_all(req.as_bytes())
            .map_err(|e| NodeError::Keosd(format!("send: {e}")))?;
        read_answer(&mut self.stream)
    }

    /// nodeos's `sign_digest`: `["<digest>","<key>"]`, K1 keys in the legacy `EOS…` form fc
    /// prints, to the URL's path.
    pub fn sign_digest(
        &mut self,
        digest: &Checksum256,
        key: &PublicKey,
    ) -> Result<Answer, NodeError> {
        let k = key.to_legacy_string().unwrap_or_else(|| key.to_string());
        let path = self.path.clone();
        self.post(&path, &format!("[\"{digest}\",\"{k}\"]"))
    }
}

/// Reads one HTTP/1.1 response with a Content-Length body.
pub fn read_answer<R: Read + ?Sized>(stream: &mut R) -> Result<Answer, NodeError> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > MAX_RESPONSE {
            return Err(NodeError::Keosd("response head too long".into()));
        }
        stream
            .read_exact(&mut byte)
            .map_err(|e| NodeError::Keosd(format!("read: {e}")))?;
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| NodeError::Keosd(format!("bad status line: {head:?}")))?;
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k == "content-length").then(|| v.trim().parse().ok())?
        })
        .ok_or_else(|| NodeError::Keosd("response without content-length".into()))?;
    if len > MAX_RESPONSE {
        return Err(NodeError::Keosd(format!(
            "response body of {len} bytes is too long"
        )));
    }
    let mut body = vec![0u8; len];
    stream
        .read_exact(&mut body)
        .map_err(|e| NodeError::Keosd(format!("read: {e}")))?;
    Ok(Answer {
        status,
        head,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

//! HTTP/1.1 for the bridge: the unix socket nodeos uses, optional loopback TCP, and `/metrics`.
//!
//! Guards: bodies are capped at [`MAX_BODY_BYTES`] before they are read; connections are capped
//! at [`MAX_CONNECTIONS`]; the socket file is created mode 0600 in a private directory and then
//! renamed into place; a live socket at the path (another bridge) is never taken over.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::Semaphore;

use super::wallet::{MAX_BODY_BYTES, WalletError};
use super::{Bridge, Reply};

/// Most connections served at once (nodeos keeps one; cleos opens one per command).
pub const MAX_CONNECTIONS: usize = 64;

/// Binds the unix socket at `path`, mode 0600, refusing to take over a live one.
pub fn bind_unix(path: &Path) -> Result<UnixListener, String> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt as _;
        if !meta.file_type().is_socket() {
            return Err(format!(
                "{} exists and is not a socket: move it away or choose another unix_socket path",
                path.display()
            ));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(format!(
                "{} is in use by a running process (another bridge?): stop it first",
                path.display()
            ));
        }
        std::fs::remove_file(path)
            .map_err(|e| format!("cannot remove the stale socket {}: {e}", path.display()))?;
    }
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let private = tempdir_in(parent)?;
    let staged = private.join("keosd.sock");
    let result = (|| {
        let listener = UnixListener::bind(&staged)
            .map_err(|e| format!("cannot bind {}: {e}", staged.display()))?;
        std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("cannot chmod {}: {e}", staged.display()))?;
        std::fs::rename(&staged, path)
            .map_err(|e| format!("cannot move the socket to {}: {e}", path.display()))?;
        Ok(listener)
    })();
    let _ = std::fs::remove_dir_all(&private);
    result
}

/// A fresh directory, mode 0700, beside the socket path.
fn tempdir_in(parent: &Path) -> Result<PathBuf, String> {
    for n in 0..100u32 {
        let p = parent.join(format!(".oryx-node-{}-{n}", std::process::id()));
        match std::fs::DirBuilder::new().mode(0o700).create(&p) {
            Ok(()) => return Ok(p),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(format!(
                    "cannot create a private directory in {}: {e}",
                    parent.display()
                ));
            }
        }
    }
    Err(format!(
        "cannot create a private directory in {}",
        parent.display()
    ))
}

use std::os::unix::fs::DirBuilderExt as _;

/// Serves the wallet API on a unix socket until the task is dropped.
pub async fn serve_unix(listener: UnixListener, bridge: Arc<Bridge>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        match listener.accept().await {
            Ok((stream, _)) => spawn_wallet_conn(stream, &bridge, &slots),
            Err(e) => accept_failed(&e).await,
        }
    }
}

/// Serves the wallet API on loopback TCP until the task is dropped.
pub async fn serve_tcp(listener: TcpListener, bridge: Arc<Bridge>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                spawn_wallet_conn(stream, &bridge, &slots);
            }
            Err(e) => accept_failed(&e).await,
        }
    }
}

async fn accept_failed(e: &std::io::Error) {
    tracing::warn!("accept failed: {e}");
    // Out of file descriptors and the like: don't spin.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
}

fn spawn_wallet_conn<S>(stream: S, bridge: &Arc<Bridge>, slots: &Arc<Semaphore>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Ok(permit) = Arc::clone(slots).try_acquire_owned() else {
        tracing::warn!("refused a connection: {MAX_CONNECTIONS} already open");
        return;
    };
    let bridge = Arc::clone(bridge);
    tokio::spawn(async move {
        let svc = hyper::service::service_fn(move |req| {
            let bridge = Arc::clone(&bridge);
            async move { Ok::<_, Infallible>(wallet_request(&bridge, req).await) }
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .keep_alive(true)
            .serve_connection(TokioIo::new(stream), svc)
            .await;
        drop(permit);
    });
}

async fn wallet_request(bridge: &Bridge, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    if req.method() != Method::POST && req.method() != Method::GET {
        return respond(
            WalletError::bad_request(
                format!("{} is not supported: use POST", req.method()),
                &path,
            )
            .into(),
        );
    }
    let body = match Limited::new(req.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return respond(
                WalletError::bad_request(
                    format!("request body unreadable or over {MAX_BODY_BYTES} bytes: {e}"),
                    &path,
                )
                .into(),
            );
        }
    };
    respond(bridge.handle(&path, &body).await)
}

fn respond(r: Reply) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(r.body)));
    *resp.status_mut() =
        StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}

/// Serves `/metrics` and `/healthz` (200 while the signer connection is up) on loopback.
pub async fn serve_metrics(listener: TcpListener, bridge: Arc<Bridge>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let bridge = Arc::clone(&bridge);
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                let bridge = Arc::clone(&bridge);
                async move {
                    let (status, body) = match req.uri().path() {
                        "/metrics" => (StatusCode::OK, bridge.render_metrics()),
                        "/healthz" if bridge.upstream().is_connected() => {
                            (StatusCode::OK, "ok\n".to_string())
                        }
                        "/healthz" => (
                            StatusCode::SERVICE_UNAVAILABLE,
                            "signer unreachable\n".to_string(),
                        ),
                        _ => (StatusCode::NOT_FOUND, "not found\n".to_string()),
                    };
                    let mut resp = Response::new(Full::new(Bytes::from(body)));
                    *resp.status_mut() = status;
                    Ok::<_, Infallible>(resp)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// Binds a TCP listener, for the wallet API or metrics.
pub async fn bind_tcp(addr: SocketAddr) -> Result<TcpListener, String> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))
}

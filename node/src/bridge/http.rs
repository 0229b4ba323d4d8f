//! HTTP/1.1 for the bridge: the unix socket nodeos uses and optional loopback TCP.
//!
//! Guards: bodies are capped at [`MAX_BODY_BYTES`] before they are read and must arrive within
//! [`BODY_TIMEOUT`]; wallet connections are capped at [`MAX_CONNECTIONS`] per listener, the one
//! idle longest giving way to a new one (metrics: [`crate::observe`]); the
//! socket file is created mode 0600 in a private directory and then renamed into place; a live
//! socket at the path is never taken over: every bridge holds an exclusive lock on
//! `<socket>.lock` for its whole life, so a second bridge on the same path is refused before it
//! touches the socket, and on shutdown a bridge removes the socket only if it is still the one
//! it created (same device and inode). The socket's directory must not be writable by other
//! users (unless sticky) nor owned by another user, or someone else could swap the socket.
//!
//! Wallet connections have no idle timeout on purpose: nodeos keeps one connection open for
//! hours and fc's http client fails the next signing if the server closed it while idle. So
//! idle connections cannot crowd out a client instead: when every slot is taken, a new
//! connection closes an idle one — one that never completed a request first (silent or
//! half-sent connections; a partly sent request's headers count as idle), else the one idle
//! longest. None is idle only while every one of them is inside a request, whose body must
//! arrive within [`BODY_TIMEOUT`]. Each listener has its own slots.
//!
//! Any local user can connect to the loopback TCP listener (`listen`), so it serves only
//! requests whose path starts with its token ([`super::token`]); anything else gets a bare 404
//! that echoes nothing. Prefer the unix socket, which only its owner can open.

use std::convert::Infallible;
use std::fs::File;
use std::io::{Read as _, Seek as _, Write as _};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::Semaphore;

use super::token::ListenToken;

use super::wallet::{MAX_BODY_BYTES, WalletError};
use super::{Bridge, Reply};
use crate::NodeError;

/// Most connections served at once (nodeos keeps one; cleos opens one per command).
pub const MAX_CONNECTIONS: usize = 64;
/// A request body must arrive within this once its headers did.
pub const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// One listener's connection slots; see the module docs for who gives way when they run out.
#[derive(Debug)]
struct Slots {
    free: Arc<Semaphore>,
    conns: std::sync::Mutex<std::collections::BTreeMap<u64, Arc<ConnState>>>,
    next: std::sync::atomic::AtomicU64,
}

/// What a connection's slot knows about it.
#[derive(Debug, Default)]
struct ConnState {
    /// Requests being served now.
    busy: std::sync::atomic::AtomicUsize,
    /// When it last finished a request (or opened), in [`now_ms`] time.
    idle_since_ms: std::sync::atomic::AtomicU64,
    /// Requests it completed: one that never completed a request gives way first.
    served: std::sync::atomic::AtomicU64,
    /// Closes it.
    evict: tokio::sync::Notify,
}

impl Slots {
    fn new() -> Arc<Self> {
        Arc::new(Slots {
            free: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
            conns: std::sync::Mutex::default(),
            next: std::sync::atomic::AtomicU64::new(0),
        })
    }

    fn conns(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<u64, Arc<ConnState>>> {
        self.conns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A slot for a new connection: a free one, or the one of the connection idle longest
    /// (closed for it). `None` when every connection is inside a request.
    async fn take(
        self: &Arc<Self>,
    ) -> Option<(tokio::sync::OwnedSemaphorePermit, u64, Arc<ConnState>)> {
        use std::sync::atomic::Ordering::Relaxed;
        let permit = match Arc::clone(&self.free).try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                // Taken out of the map as it is chosen, so two new connections never pick the
                // same one (and wait for one freed slot between them).
                let victim = {
                    let mut conns = self.conns();
                    let id = conns
                        .iter()
                        .filter(|(_, c)| c.busy.load(Relaxed) == 0)
                        .min_by_key(|(_, c)| {
                            (c.served.load(Relaxed) > 0, c.idle_since_ms.load(Relaxed))
                        })
                        .map(|(id, _)| *id)?;
                    conns.remove(&id)?
                };
                victim.evict.notify_one();
                tracing::warn!(
                    "{MAX_CONNECTIONS} wallet connections open: closing an idle one (one that never completed a request first, else the one idle longest)"
                );
                tokio::time::timeout(
                    std::time::Duration::from_secs(1),
                    Arc::clone(&self.free).acquire_owned(),
                )
                .await
                .ok()?
                .ok()?
            }
        };
        let id = self.next.fetch_add(1, Relaxed);
        let state = Arc::new(ConnState::default());
        state.idle_since_ms.store(now_ms(), Relaxed);
        self.conns().insert(id, Arc::clone(&state));
        Some((permit, id, state))
    }

    fn release(&self, id: u64) {
        self.conns().remove(&id);
    }
}

/// Milliseconds since this process's first call (a monotonic clock for idle times).
fn now_ms() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let start = *START.get_or_init(std::time::Instant::now);
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The bridge's claim on its unix socket: holds `<socket>.lock` locked for as long as it lives,
/// and on drop removes the socket if it is still the one this bridge created.
#[derive(Debug)]
pub struct SocketGuard {
    path: PathBuf,
    /// (device, inode, change time in seconds and nanoseconds) of the socket this bridge
    /// created: the change time tells a new socket that reuses the inode number apart.
    id: (u64, u64, i64, i64),
    /// Locked; unlocked by the OS when closed (or when the process dies).
    _lock: File,
}

impl SocketGuard {
    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SocketGuard {
    fn drop(&mut self) {
        // The lock is still held here (fields drop after this), so no other bridge can be
        // binding the path between the check and the unlink.
        match std::fs::symlink_metadata(&self.path) {
            Ok(m) if socket_id(&m) == self.id => {
                if let Err(e) = std::fs::remove_file(&self.path) {
                    tracing::warn!("cannot remove the socket {}: {e}", self.path.display());
                }
            }
            Ok(_) => tracing::warn!(
                "{} is no longer the socket this bridge created: left in place",
                self.path.display()
            ),
            Err(_) => {}
        }
    }
}

/// The lock file beside the socket at `path`.
pub fn lock_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".lock");
    PathBuf::from(p)
}

/// Binds the unix socket at `path`, mode 0600, refusing to take over a live one. Keep the
/// returned guard for the life of the process.
pub fn bind_unix(path: &Path) -> Result<(UnixListener, SocketGuard), NodeError> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    check_dir_mode(parent)?;
    let private = tempdir_in(parent)?;
    let result = (|| {
        // A directory we just created is owned by our effective uid.
        let me = std::fs::metadata(&private)
            .map_err(NodeError::io("cannot stat", &private))?
            .uid();
        check_dir_owner(parent, me)?;
        let lock = take_lock(&lock_path(path), me)?;
        remove_stale(path)?;
        let staged = private.join("keosd.sock");
        let listener =
            UnixListener::bind(&staged).map_err(NodeError::io("cannot bind", &staged))?;
        std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o600))
            .map_err(NodeError::io("cannot chmod", &staged))?;
        let m =
            std::fs::symlink_metadata(&staged).map_err(NodeError::io("cannot stat", &staged))?;
        std::fs::rename(&staged, path).map_err(NodeError::io("cannot move the socket to", path))?;
        // Identified after the rename, which changes the inode's change time.
        let placed = std::fs::symlink_metadata(path).map_err(NodeError::io("cannot stat", path))?;
        if (placed.dev(), placed.ino()) != (m.dev(), m.ino()) {
            return Err(NodeError::Socket(format!(
                "{} was replaced while the bridge was binding it",
                path.display()
            )));
        }
        Ok((
            listener,
            SocketGuard {
                path: path.to_path_buf(),
                id: socket_id(&placed),
                _lock: lock,
            },
        ))
    })();
    let _ = std::fs::remove_dir_all(&private);
    result
}

/// What identifies the socket file this bridge created.
fn socket_id(m: &std::fs::Metadata) -> (u64, u64, i64, i64) {
    (m.dev(), m.ino(), m.ctime(), m.ctime_nsec())
}

/// Refuses a directory other users may write to without the sticky bit (they could remove or
/// replace the socket).
fn check_dir_mode(dir: &Path) -> Result<(), NodeError> {
    let m = socket_dir_metadata(dir)?;
    let mode = m.permissions().mode();
    if mode & 0o022 != 0 && mode & 0o1000 == 0 {
        return Err(NodeError::Socket(format!(
            "the unix_socket directory {} is writable by other users (mode {:o}) without the \
             sticky bit, so they could replace the socket: `chmod go-w {}` or choose a private \
             directory (e.g. /run/oryx, mode 0750)",
            dir.display(),
            mode & 0o7777,
            dir.display()
        )));
    }
    Ok(())
}

/// The socket directory's metadata, or why the directory cannot be used.
fn socket_dir_metadata(dir: &Path) -> Result<std::fs::Metadata, NodeError> {
    std::fs::metadata(dir).map_err(|e| {
        NodeError::Socket(format!(
            "the unix_socket directory {} is unusable: {e}",
            dir.display()
        ))
    })
}

/// Refuses a directory owned by another user (other than root): they could replace the socket.
fn check_dir_owner(dir: &Path, me: u32) -> Result<(), NodeError> {
    let m = socket_dir_metadata(dir)?;
    owner_problem(dir, m.uid(), me).map_or(Ok(()), |why| Err(NodeError::Socket(why)))
}

/// Why a directory owned by `owner` is unsafe for a bridge running as `me`, if it is.
fn owner_problem(dir: &Path, owner: u32, me: u32) -> Option<String> {
    (owner != me && owner != 0).then(|| {
        format!(
            "the unix_socket directory {} is owned by uid {owner}, not by this user (uid {me}) \
             or root, so its owner could replace the socket: `chown` it to the bridge's user or \
             choose a directory the bridge's user owns",
            dir.display()
        )
    })
}

/// Opens `lock` (created mode 0600 if missing) and locks it exclusively, or says who holds it.
fn take_lock(lock: &Path, me: u32) -> Result<File, NodeError> {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(lock)
        .map_err(NodeError::io("cannot open the lock file", lock))?;
    // Must be the regular file we opened, ours, not a symlink planted at the name.
    let opened = f.metadata().map_err(NodeError::io("cannot stat", lock))?;
    let named = std::fs::symlink_metadata(lock).map_err(NodeError::io("cannot stat", lock))?;
    if !named.file_type().is_file()
        || (opened.dev(), opened.ino()) != (named.dev(), named.ino())
        || opened.uid() != me
    {
        return Err(NodeError::Socket(format!(
            "the lock file {} is not a regular file owned by this user (uid {me}): remove it",
            lock.display()
        )));
    }
    match f.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = f.read_to_string(&mut holder);
            let holder = holder.trim();
            let who = if holder.is_empty() {
                String::new()
            } else {
                format!(" (pid {holder})")
            };
            return Err(NodeError::SocketInUse(format!(
                "another bridge{who} holds {} and serves this unix_socket: stop it first, or \
                 give this bridge another unix_socket path",
                lock.display()
            )));
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(NodeError::io("cannot lock", lock)(e));
        }
    }
    // Who holds it, for the next bridge's error message (best effort).
    let _ = f.set_len(0);
    let _ = f.rewind();
    let _ = writeln!(f, "{}", std::process::id());
    Ok(f)
}

/// With the lock held: removes a dead socket left at `path` (a crashed bridge); refuses
/// anything else.
fn remove_stale(path: &Path) -> Result<(), NodeError> {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    use std::os::unix::fs::FileTypeExt as _;
    if !meta.file_type().is_socket() {
        return Err(NodeError::Socket(format!(
            "{} exists and is not a socket: move it away or choose another unix_socket path",
            path.display()
        )));
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(NodeError::SocketInUse(format!(
            "{} is in use by a running process that does not hold {} (keosd, or an older \
             bridge?): stop it first",
            path.display(),
            lock_path(path).display()
        )));
    }
    std::fs::remove_file(path).map_err(NodeError::io("cannot remove the stale socket", path))
}

/// A fresh directory, mode 0700, beside the socket path.
fn tempdir_in(parent: &Path) -> Result<PathBuf, NodeError> {
    for n in 0..100u32 {
        let p = parent.join(format!(".oryx-node-{}-{n}", std::process::id()));
        match std::fs::DirBuilder::new().mode(0o700).create(&p) {
            Ok(()) => return Ok(p),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(NodeError::io(
                    "cannot create a private directory in",
                    parent,
                )(e));
            }
        }
    }
    Err(NodeError::io(
        "cannot create a private directory in",
        parent,
    )(std::io::ErrorKind::AlreadyExists.into()))
}

/// Serves the wallet API on a unix socket until the task is dropped.
pub async fn serve_unix(listener: UnixListener, bridge: Arc<Bridge>) {
    let slots = Slots::new();
    loop {
        match listener.accept().await {
            Ok((stream, _)) => spawn_wallet_conn(stream, &bridge, &slots, None),
            Err(e) => accept_failed(&e).await,
        }
    }
}

/// Serves the wallet API on loopback TCP, to requests that carry `token`, until the task is
/// dropped.
pub async fn serve_tcp(listener: TcpListener, bridge: Arc<Bridge>, token: Arc<ListenToken>) {
    let slots = Slots::new();
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                spawn_wallet_conn(stream, &bridge, &slots, Some(Arc::clone(&token)));
            }
            Err(e) => accept_failed(&e).await,
        }
    }
}

/// Requests refused for a missing or wrong token (logged once per doubling).
static NO_TOKEN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

async fn accept_failed(e: &std::io::Error) {
    tracing::warn!("accept failed: {e}");
    // Out of file descriptors and the like: don't spin.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
}

fn spawn_wallet_conn<S>(
    stream: S,
    bridge: &Arc<Bridge>,
    slots: &Arc<Slots>,
    token: Option<Arc<ListenToken>>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let bridge = Arc::clone(bridge);
    let slots = Arc::clone(slots);
    tokio::spawn(async move {
        let Some((permit, id, state)) = slots.take().await else {
            tracing::warn!(
                "refused a connection: {MAX_CONNECTIONS} already open, each inside a request"
            );
            return;
        };
        let conn_state = Arc::clone(&state);
        let svc = hyper::service::service_fn(move |req| {
            let bridge = Arc::clone(&bridge);
            let state = Arc::clone(&conn_state);
            let token = token.clone();
            async move {
                use std::sync::atomic::Ordering::Relaxed;
                state.busy.fetch_add(1, Relaxed);
                let resp = wallet_request(&bridge, req, token.as_deref()).await;
                state.idle_since_ms.store(now_ms(), Relaxed);
                state.served.fetch_add(1, Relaxed);
                state.busy.fetch_sub(1, Relaxed);
                Ok::<_, Infallible>(resp)
            }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .keep_alive(true)
            .serve_connection(TokioIo::new(stream), svc);
        tokio::select! {
            _ = conn => {}
            () = state.evict.notified() => {}
        }
        slots.release(id);
        drop(permit);
    });
}

async fn wallet_request(
    bridge: &Bridge,
    req: Request<Incoming>,
    token: Option<&ListenToken>,
) -> Response<Full<Bytes>> {
    let full = req.uri().path();
    let path = match token {
        None => full.to_string(),
        Some(t) => match t.strip(full) {
            Some(rest) => rest.to_string(),
            None => {
                let n = NO_TOKEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                if n.is_power_of_two() {
                    tracing::warn!(
                        refused = n,
                        "a request on the TCP listener without its token: refused"
                    );
                }
                let mut resp = Response::new(Full::new(Bytes::from_static(b"not found\n")));
                *resp.status_mut() = StatusCode::NOT_FOUND;
                return resp;
            }
        },
    };
    if req.method() != Method::POST && req.method() != Method::GET {
        return respond(
            WalletError::bad_request(
                format!("{} is not supported: use POST", req.method()),
                &path,
            )
            .into(),
        );
    }
    let body = match tokio::time::timeout(
        BODY_TIMEOUT,
        Limited::new(req.into_body(), MAX_BODY_BYTES).collect(),
    )
    .await
    {
        Ok(Ok(b)) => b.to_bytes(),
        Err(_) => {
            return respond(
                WalletError::bad_request(
                    format!(
                        "request body not received within {} s",
                        BODY_TIMEOUT.as_secs()
                    ),
                    &path,
                )
                .into(),
            );
        }
        Ok(Err(e)) => {
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

/// Binds a TCP listener, for the wallet API or metrics; returns it with the address it got
/// (the port, when `addr` asked for port 0).
pub async fn bind_tcp(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), NodeError> {
    let listen_error = |source| NodeError::Listen { addr, source };
    let listener = TcpListener::bind(addr).await.map_err(listen_error)?;
    let at = listener.local_addr().map_err(listen_error)?;
    Ok((listener, at))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn private_dir() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        d
    }

    #[tokio::test]
    async fn a_second_bind_on_the_same_path_is_refused_and_leaves_the_first_alone() {
        let d = private_dir();
        let path = d.path().join("keosd.sock");
        let (_l, guard) = bind_unix(&path).unwrap();
        let id = std::fs::symlink_metadata(&path).unwrap().ino();
        let e = bind_unix(&path).unwrap_err();
        assert!(matches!(e, NodeError::SocketInUse(_)), "{e:?}");
        let e = e.to_string();
        assert!(e.contains("another bridge") && e.contains(".lock"), "{e}");
        assert!(e.contains(&format!("pid {}", std::process::id())), "{e}");
        assert_eq!(std::fs::symlink_metadata(&path).unwrap().ino(), id);
        assert!(std::os::unix::net::UnixStream::connect(&path).is_ok());
        drop(guard);
        assert!(std::fs::symlink_metadata(&path).is_err(), "removed on drop");
        // Once released, the path can be bound again.
        let (_l2, _g2) = bind_unix(&path).unwrap();
    }

    #[tokio::test]
    async fn on_shutdown_a_socket_someone_else_put_there_is_left_in_place() {
        let d = private_dir();
        let path = d.path().join("keosd.sock");
        let (l, guard) = bind_unix(&path).unwrap();
        drop(l);
        // Someone replaced the socket meanwhile (an operator, a test harness, ...). A second
        // link keeps the old inode alive, so the new socket cannot reuse its number within the
        // same clock tick (which would make the two indistinguishable here).
        std::fs::hard_link(&path, d.path().join("old.sock")).unwrap();
        std::fs::remove_file(&path).unwrap();
        let other = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let id = std::fs::symlink_metadata(&path).unwrap().ino();
        drop(guard);
        assert_eq!(std::fs::symlink_metadata(&path).unwrap().ino(), id);
        drop(other);
    }

    #[tokio::test]
    async fn a_stale_socket_is_replaced_and_a_live_unlocked_one_is_not() {
        let d = private_dir();
        let path = d.path().join("keosd.sock");
        // Live, but not a bridge (no lock): refused, kept.
        let live = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let e = bind_unix(&path).unwrap_err();
        assert!(matches!(e, NodeError::SocketInUse(_)), "{e:?}");
        assert!(e.to_string().contains("in use by a running process"), "{e}");
        assert!(std::os::unix::net::UnixStream::connect(&path).is_ok());
        // Dead (its owner crashed): replaced.
        drop(live);
        let (_l, _g) = bind_unix(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[tokio::test]
    async fn a_directory_others_can_write_to_is_refused_unless_sticky() {
        let d = private_dir();
        let shared = d.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = bind_unix(&shared.join("keosd.sock"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("writable by other users") && e.contains("chmod go-w"),
            "{e}"
        );
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o770)).unwrap();
        assert!(bind_unix(&shared.join("keosd.sock")).is_err());
        // Sticky (like /tmp): others cannot remove or rename our socket.
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let (_l, _g) = bind_unix(&shared.join("keosd.sock")).unwrap();
    }

    #[test]
    fn a_directory_owned_by_another_user_is_refused() {
        let d = private_dir();
        let me = std::fs::metadata(d.path()).unwrap().uid();
        assert!(check_dir_owner(d.path(), me).is_ok());
        let dir = Path::new("/srv/x");
        assert_eq!(owner_problem(dir, 1000, 1000), None);
        assert_eq!(
            owner_problem(dir, 0, 1000),
            None,
            "root's directories are fine"
        );
        let e = owner_problem(dir, 1001, 1000).unwrap();
        assert!(
            e.contains("owned by uid 1001") && e.contains("chown"),
            "{e}"
        );
        assert!(owner_problem(dir, 1001, 0).is_some());
    }

    #[tokio::test]
    async fn a_symlink_planted_as_the_lock_file_is_refused() {
        let d = private_dir();
        let path = d.path().join("keosd.sock");
        let target = d.path().join("elsewhere");
        std::fs::write(&target, b"keep").unwrap();
        std::os::unix::fs::symlink(&target, lock_path(&path)).unwrap();
        let e = bind_unix(&path).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
    }
}

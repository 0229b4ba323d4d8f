//! The shared watermark store: several signer replicas keep each (chain, key) watermark in an
//! etcd v3 cluster, so a standby signer can never sign a different block at a height another
//! replica signed.
//!
//! Guards (DESIGN.md §4, "Replicas"):
//! - **One linearizable compare-and-swap per reservation**, never a lock, lease or election
//!   (those are not mutual exclusion: a paused holder wakes up still believing it holds them).
//!   The rules of [`decide`] run on the watermark this replica last saw at etcd revision `r`,
//!   and the reservation is written only if the watermark is still at `r` — and, when it moves
//!   up, only if the stored height (and, for blocks, slot) is below the request's, compared as
//!   fixed-width big-endian bytes (etcd's byte order is then numeric order). Otherwise the
//!   transaction answers the current watermark and the rules run again on it. One round trip
//!   while this replica is the one signing; the first request after a start or a take-over
//!   reads the watermark first.
//! - **Sign only after the transaction committed.** An identical request (same position, same
//!   digest) gets the stored signature: after signing, the signature is written to its own key,
//!   tagged with the reservation's revision, so another replica can return it. That write is
//!   off the reply's path (the reservation is the guard; a lost signature only means an
//!   identical retry signs the same content again) and lands only while the reservation it
//!   belongs to is still the current one.
//! - **Fail closed**: unreachable, no leader (every request requires one), timeout, an unknown
//!   outcome, NOSPACE, or a revision below one this replica already saw (a restored or
//!   rolled-back store) refuses with [`StoreError`]s that say what to do, and `/readyz` turns
//!   unready. Nothing falls back to a local file, and nothing starts from zero: a watermark
//!   missing from etcd refuses until one is imported.
//! - Each replica keeps the highest etcd revision it has seen and its reservations' blocks in a
//!   local [`journal`], durable (`fdatasync`) before a signature leaves, to detect a rollback
//!   across its own restarts; the sync runs while the backend signs.
//!
//! Layout, under a per-deployment prefix:
//! `<prefix>/wm/<chain id hex>/<key>/num` = `BE32(block_num) ‖ JSON record`,
//! `<prefix>/wm/<chain id hex>/<key>/slot` = `BE32(slot)` and
//! `<prefix>/wm/<chain id hex>/<key>/sig` = the JSON [`Committed`] signature of the reservation
//! at its `revision`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use etcd_client::{Compare, CompareOp, GetOptions, KvClient, Txn, TxnOp, TxnOpResponse};
use oryx_proto::antelope::{Checksum256, PublicKey, Signature};
use serde::{Deserialize, Serialize};

mod journal;

use super::rules::{Decision, Request, RetryPolicy, Watermark, decide};
use super::{
    CommitStep, Refusal, Reservation, ReserveError, Reserved, StoreError, WatermarkKey,
    WatermarkRecord, WatermarkStore,
};
use journal::Journal;

/// With the test-only feature `unsafe-test-store`, this environment variable makes every
/// compare-and-swap unconditional: an unsafe store, for proving that the HA tests' checker
/// catches double signing. Builds without the feature ignore it.
pub const UNSAFE_SKIP_COMPARE: &str = "ORYX_TEST_UNSAFE_SKIP_COMPARE";

/// How often one reservation re-reads a watermark that other replicas keep moving.
const MAX_ATTEMPTS: u32 = 4;

/// How to reach the cluster.
#[derive(Clone)]
pub struct EtcdSettings {
    /// Client URLs of the members (`https://host:port`).
    pub endpoints: Vec<String>,
    /// Key prefix of this deployment (every key lives under it).
    pub prefix: String,
    /// This replica's name, recorded with each reservation.
    pub replica: String,
    /// CA (PEM) the members' certificates chain to, this replica's client certificate and key
    /// (PEM).
    pub tls: (Vec<u8>, Vec<u8>, Vec<u8>),
    /// Longest wait for one etcd request.
    pub timeout: Duration,
    /// Longest wait for a connection to a member.
    pub connect_timeout: Duration,
    /// The replica's local journal (highest revision seen, last reservation); `None` for a
    /// tool that only reads or imports beside the running replicas.
    pub journal: Option<PathBuf>,
}

impl EtcdSettings {
    /// From the config, with the TLS files read.
    pub fn from_config(
        c: &crate::config::EtcdConfig,
        journal: Option<PathBuf>,
    ) -> Result<Self, StoreError> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|source| StoreError::Io {
                path: p.display().to_string(),
                source,
            })
        };
        Ok(EtcdSettings {
            endpoints: c.endpoints.clone(),
            prefix: c.prefix.clone(),
            replica: c.replica.clone(),
            tls: (read(&c.ca_cert)?, read(&c.cert)?, read(&c.key)?),
            timeout: Duration::from_millis(c.timeout_ms),
            connect_timeout: Duration::from_millis(c.connect_timeout_ms),
            journal,
        })
    }
}

impl std::fmt::Debug for EtcdSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdSettings")
            .field("endpoints", &self.endpoints)
            .field("prefix", &self.prefix)
            .field("replica", &self.replica)
            .field("tls", &"<redacted>")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The record stored after the 4-byte block number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    slot: u32,
    wall_slot: u32,
    digest: Checksum256,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signature: Option<Signature>,
    /// The replica that made the reservation.
    replica: String,
    /// A random id of the reservation (to tell two reservations of one digest apart).
    request: String,
}

/// A signature committed for the reservation written at `revision`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Committed {
    revision: i64,
    digest: Checksum256,
    signature: Signature,
    replica: String,
}

fn be32(n: u32) -> Vec<u8> {
    n.to_be_bytes().to_vec()
}

/// A watermark as read from etcd, with the revision it was last written at.
type Seen = (Watermark, i64);

/// A signature to write for the reservation of `key` made at revision `rev`.
struct CommitJob {
    key: WatermarkKey,
    rev: i64,
    txn: Txn,
    /// When the signature was made.
    at: tokio::time::Instant,
}

/// How long a signature commit waits before it is sent: past the reply, so the members' log
/// writes for it do not queue beside the replica's own audit sync, and long enough that under
/// back-to-back requests the next reservation usually replaces it (then it is skipped). A node
/// retries on another replica only after a failure or its attempt timeout, far later.
const COMMIT_DELAY: Duration = Duration::from_millis(10);

/// How many signature commits may wait; past that a commit is dropped (it is an optimisation
/// for identical retries, never a guard).
const COMMIT_QUEUE: usize = 1024;

/// Writes signature commits one at a time, [`COMMIT_DELAY`] after their signatures. A commit whose reservation this
/// replica has already replaced is skipped: its compare could no longer succeed, and under a
/// burst of requests only the newest signature per key is worth a round trip.
async fn committer(
    mut jobs: tokio::sync::mpsc::Receiver<CommitJob>,
    seen: Arc<Mutex<HashMap<WatermarkKey, Seen>>>,
    mut kv: KvClient,
    timeout: Duration,
) {
    while let Some(job) = jobs.recv().await {
        tokio::time::sleep_until(job.at + COMMIT_DELAY).await;
        let superseded = lock(&seen)
            .get(&job.key)
            .is_some_and(|(_, r)| *r != job.rev);
        if superseded {
            continue;
        }
        if let Err(e) = tokio::time::timeout(timeout, kv.txn(job.txn)).await {
            tracing::debug!("signature commit to etcd not confirmed: {e}");
        }
    }
}

/// Watermarks in etcd, shared by every replica of a deployment.
pub struct EtcdStore {
    rt: tokio::runtime::Runtime,
    kv: KvClient,
    prefix: String,
    replica: String,
    timeout: Duration,
    /// The watermark this replica last read or wrote per key, and its revision: the state a
    /// reservation's compare-and-swap expects. A wrong guess costs one round trip, never safety.
    seen: Arc<Mutex<HashMap<WatermarkKey, Seen>>>,
    /// Signature commits waiting for the committer task (see [`committer`]).
    commits: tokio::sync::mpsc::Sender<CommitJob>,
    journal: Mutex<Journal>,

    /// The state directory's lock, held by the serving replica.
    _lock: Option<super::file::DirLock>,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("prefix", &self.prefix)
            .field("replica", &self.replica)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every value behind these locks is replaced whole after the step that justifies it.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A key's name in the journal.
fn journal_key(key: &WatermarkKey) -> String {
    format!("{}/{}", key.chain_id, key.scope)
}

/// How often one call is asked when it never reached a member ([`EtcdStore::call`]).
const NOT_SENT_ATTEMPTS: u32 = 4;

/// Whether an etcd error says the request never left this process (no connection to the
/// member the client picked), so asking again cannot write twice.
fn not_sent(e: &etcd_client::Error) -> bool {
    match e {
        etcd_client::Error::TransportError(_) => true,
        etcd_client::Error::GRpcStatus(s) => {
            s.code() == tonic::Code::Unavailable
                && ["connect error", "Connection refused"]
                    .iter()
                    .any(|m| s.message().contains(m))
        }
        _ => false,
    }
}

fn unreachable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unreachable {
        detail: e.to_string(),
    }
}

impl EtcdStore {
    /// Connects (lazily: an unreachable cluster makes requests fail, not the start) and opens
    /// the local journal.
    pub fn open(
        settings: &EtcdSettings,
        lock: Option<super::file::DirLock>,
    ) -> Result<Self, StoreError> {
        if settings.endpoints.is_empty() {
            return Err(unreachable("no endpoints configured"));
        }
        let journal = match &settings.journal {
            Some(path) => Journal::open(path)?,
            None => Journal::in_memory(),
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("oryx-etcd")
            .enable_all()
            .build()
            .map_err(|e| unreachable(format!("runtime: {e}")))?;
        let (ca, cert, key) = &settings.tls;
        let opts = etcd_client::ConnectOptions::new()
            .with_timeout(settings.timeout)
            .with_connect_timeout(settings.connect_timeout)
            .with_keep_alive(Duration::from_secs(5), Duration::from_secs(3))
            // No leader, no answer: a partitioned minority must not serve stale reads.
            .with_require_leader(true)
            // No domain name set: each member's certificate is checked against the host of its
            // own endpoint.
            .with_tls(
                etcd_client::TlsOptions::new()
                    .ca_certificate(etcd_client::Certificate::from_pem(ca))
                    .identity(etcd_client::Identity::from_pem(cert, key)),
            );
        let client = rt
            .block_on(etcd_client::Client::connect(
                &settings.endpoints,
                Some(opts),
            ))
            .map_err(unreachable)?;
        #[cfg(feature = "unsafe-test-store")]
        if std::env::var_os(UNSAFE_SKIP_COMPARE).is_some() {
            tracing::error!(
                "{UNSAFE_SKIP_COMPARE} is set in a build with the unsafe-test-store feature: this \
                 store skips its compare-and-swap and WILL double sign (tests only)"
            );
        }
        let seen = Arc::new(Mutex::default());
        let (commits, jobs) = tokio::sync::mpsc::channel(COMMIT_QUEUE);
        rt.spawn(committer(
            jobs,
            Arc::clone(&seen),
            client.kv_client(),
            settings.timeout,
        ));
        Ok(EtcdStore {
            kv: client.kv_client(),
            rt,
            commits,
            prefix: settings.prefix.trim_end_matches('/').to_string(),
            replica: settings.replica.clone(),
            timeout: settings.timeout,
            seen,
            journal: Mutex::new(journal),

            _lock: lock,
        })
    }

    fn num_key(&self, key: &WatermarkKey) -> String {
        format!("{}/wm/{}/{}/num", self.prefix, key.chain_id, key.scope)
    }

    fn slot_key(&self, key: &WatermarkKey) -> String {
        format!("{}/wm/{}/{}/slot", self.prefix, key.chain_id, key.scope)
    }

    fn sig_key(&self, key: &WatermarkKey) -> String {
        format!("{}/wm/{}/{}/sig", self.prefix, key.chain_id, key.scope)
    }

    /// Set by the first replica that finds the store rolled back: every reservation of every
    /// replica requires it absent, so one replica's finding stops them all until an operator
    /// re-imports the newest watermarks and runs `oryx-signer watermark unfence`.
    fn fence_key(&self) -> String {
        format!("{}/fence", self.prefix)
    }

    /// Fences the store (best effort) after this replica found it rolled back.
    fn fence(&self, why: &StoreError) {
        let value = serde_json::json!({"replica": self.replica, "reason": why.to_string()});
        let value = value.to_string();
        let put = |mut kv: KvClient| {
            let (key, value) = (self.fence_key(), value.clone());
            async move { kv.put(key, value, None).await }
        };
        if let Err(e) = self.call(true, put) {
            tracing::error!("could not fence the watermark store after a rollback: {e}");
        }
    }

    /// Removes the fence (`watermark unfence`); answers whether there was one.
    pub fn unfence(&self) -> Result<bool, StoreError> {
        let floor = self.revision_floor();
        let resp = self.call(true, |mut kv| {
            let key = self.fence_key();
            async move { kv.delete(key, None).await }
        })?;
        self.observe(resp.header(), floor)?;
        Ok(resp.deleted() > 0)
    }

    fn encode(&self, w: &Watermark) -> Result<Vec<u8>, StoreError> {
        let mut request = [0u8; 8];
        getrandom::fill(&mut request).map_err(|e| unreachable(format!("random source: {e}")))?;
        let record = Record {
            slot: w.slot,
            wall_slot: w.wall_slot,
            digest: w.digest,
            signature: w.signature,
            replica: self.replica.clone(),
            request: hex::encode(request),
        };
        let mut v = be32(w.block_num);
        v.extend(serde_json::to_vec(&record).map_err(|e| unreachable(e.to_string()))?);
        Ok(v)
    }

    fn decode(&self, k: &[u8], v: &[u8]) -> Result<Watermark, StoreError> {
        let corrupt = |detail: String| StoreError::Corrupt {
            path: format!("etcd key {}", String::from_utf8_lossy(k)),
            detail,
        };
        let (num, rest) = v
            .split_first_chunk::<4>()
            .ok_or_else(|| corrupt(format!("{} bytes", v.len())))?;
        let r: Record = serde_json::from_slice(rest).map_err(|e| corrupt(e.to_string()))?;
        Ok(Watermark {
            block_num: u32::from_be_bytes(*num),
            slot: r.slot,
            wall_slot: r.wall_slot,
            digest: r.digest,
            signature: r.signature,
        })
    }

    /// Runs one etcd call (`f` on a client) within the timeout; `Err` is already the store
    /// error to answer with. `sends_write`: a timeout leaves the outcome unknown.
    ///
    /// A call that never reached a member — the client picked a member it has no connection to,
    /// as it does for seconds after a member dies, or answered first with a connection's last
    /// error — is asked again at once, within the same timeout: nothing was sent, and the
    /// client picks again.
    fn call<T, F, Fut>(&self, sends_write: bool, mut f: F) -> Result<T, StoreError>
    where
        F: FnMut(KvClient) -> Fut,
        Fut: std::future::Future<Output = Result<T, etcd_client::Error>>,
    {
        self.rt.block_on(async {
            let deadline = tokio::time::Instant::now() + self.timeout;
            let mut attempt = 1;
            loop {
                match tokio::time::timeout_at(deadline, f(self.kv.clone())).await {
                    Ok(Ok(t)) => return Ok(t),
                    Ok(Err(e)) if attempt < NOT_SENT_ATTEMPTS && not_sent(&e) => {
                        attempt += 1;
                        tracing::debug!("etcd call did not reach a member, asking again: {e}");
                    }
                    Ok(Err(e)) => return Err(unreachable(e)),
                    Err(_) if sends_write => {
                        return Err(StoreError::UnknownOutcome {
                            timeout_ms: self.timeout.as_millis() as u64,
                        });
                    }
                    Err(_) => {
                        return Err(unreachable(format!(
                            "no answer within {} ms",
                            self.timeout.as_millis()
                        )));
                    }
                }
            }
        })
    }

    /// One transaction through [`Self::call`].
    fn txn(&self, sends_write: bool, txn: &Txn) -> Result<etcd_client::TxnResponse, StoreError> {
        self.call(sends_write, |mut kv| {
            let txn = txn.clone();
            async move { kv.txn(txn).await }
        })
    }

    /// The highest revision seen so far: any linearizable answer to a request sent from now
    /// on must be at least this one (answers to requests sent earlier may arrive later, lower).
    fn revision_floor(&self) -> i64 {
        let j = lock(&self.journal);
        j.seen.max(j.durable)
    }

    /// Checks an answer to a request sent when the floor was `floor`.
    fn observe(
        &self,
        header: Option<&etcd_client::ResponseHeader>,
        floor: i64,
    ) -> Result<(), StoreError> {
        let revision = header
            .map(etcd_client::ResponseHeader::revision)
            .ok_or_else(|| unreachable("an answer without a header"))?;
        let r = lock(&self.journal).observe(revision, floor);
        if let Err(e) = &r {
            self.fence(e);
        }
        r
    }

    /// The highest block this replica reserved for `key`, before a request is sent: what its
    /// answer may not be below.
    fn block_floor(&self, key: &WatermarkKey) -> Option<u32> {
        lock(&self.journal).block_floor(&journal_key(key))
    }

    /// Refuses (and fences) a watermark etcd answered below `floor` ([`Self::block_floor`]).
    fn above_floor(
        &self,
        key: &WatermarkKey,
        seen: Option<Seen>,
        floor: Option<u32>,
    ) -> Result<Option<Seen>, StoreError> {
        match (floor, &seen) {
            (Some(floor), Some((w, _))) if w.block_num < floor => {
                let e = StoreError::RolledBack {
                    found: format!(
                        "block {} for {key}, after this replica reserved block {floor} ({})",
                        w.block_num,
                        lock(&self.journal).path.display(),
                    ),
                };
                self.fence(&e);
                Err(e)
            }
            _ => Ok(seen),
        }
    }

    /// The watermark of `key` now (linearizable), with its revision.
    fn read(&self, key: &WatermarkKey) -> Result<Option<Seen>, StoreError> {
        let (num, sig) = (self.num_key(key), self.sig_key(key));
        let txn = Txn::new().and_then(vec![
            TxnOp::get(num, None),
            TxnOp::get(sig, None),
            TxnOp::get(self.fence_key(), None),
        ]);
        let (floor, block_floor) = (self.revision_floor(), self.block_floor(key));
        let resp = self.txn(false, &txn)?;
        self.observe(resp.header(), floor)?;
        let seen = self.seen_in(resp.op_responses())?;
        self.above_floor(key, seen, block_floor)
    }

    /// The watermark in the answers of `get(num), get(sig), get(fence)`, with the revision of
    /// `num`; the signature counts only if it was committed for that very reservation, and a
    /// fence refuses.
    fn seen_in(&self, responses: Vec<TxnOpResponse>) -> Result<Option<Seen>, StoreError> {
        let first = |i: usize| match responses.get(i) {
            Some(TxnOpResponse::Get(g)) => Ok(g.kvs().first().cloned()),
            _ => Err(unreachable("a transaction answered without its reads")),
        };
        if let Some(fence) = first(2)? {
            return Err(StoreError::Fenced {
                detail: String::from_utf8_lossy(fence.value()).into_owned(),
            });
        }
        let (Some(num), sig) = (first(0)?, first(1)?) else {
            return Ok(None);
        };
        let mut w = self.decode(num.key(), num.value())?;
        if let Some(sig) = sig {
            let c: Committed =
                serde_json::from_slice(sig.value()).map_err(|e| StoreError::Corrupt {
                    path: format!("etcd key {}", String::from_utf8_lossy(sig.key())),
                    detail: e.to_string(),
                })?;
            if w.signature.is_none() && c.revision == num.mod_revision() && c.digest == w.digest {
                w.signature = Some(c.signature);
            }
        }
        Ok(Some((w, num.mod_revision())))
    }

    /// Writes `next` if the watermark is still `(stored, rev)` (and, moving up, still below
    /// it); answers `Ok(rev')` with the new revision, or `Err(current)`.
    fn swap(
        &self,
        key: &WatermarkKey,
        stored: Option<&Seen>,
        next: &Watermark,
        block_request: bool,
    ) -> Result<Result<i64, Option<Seen>>, StoreError> {
        let (num, slot) = (self.num_key(key), self.slot_key(key));
        let mut when = vec![
            match stored {
                Some((_, rev)) => Compare::mod_revision(num.clone(), CompareOp::Equal, *rev),
                None => Compare::create_revision(num.clone(), CompareOp::Equal, 0),
            },
            // Nothing is written while the store is fenced (re-import the newest watermarks
            // with the fence in place is refused too: unfence after checking them).
            Compare::version(self.fence_key(), CompareOp::Equal, 0),
        ];
        if let Some((w, _)) = stored {
            if next.block_num > w.block_num {
                when.push(Compare::value(
                    num.clone(),
                    CompareOp::Less,
                    be32(next.block_num),
                ));
            }
            if block_request && next.slot > w.slot {
                when.push(Compare::value(
                    slot.clone(),
                    CompareOp::Less,
                    be32(next.slot),
                ));
            }
        }
        #[cfg(feature = "unsafe-test-store")]
        if std::env::var_os(UNSAFE_SKIP_COMPARE).is_some() {
            // The deliberately broken store the HA checker must catch: no compare, so
            // replicas overwrite each other's reservations.
            when.clear();
        }
        let txn = Txn::new()
            .when(when)
            .and_then(vec![
                TxnOp::put(num.clone(), self.encode(next)?, None),
                TxnOp::put(slot, be32(next.slot), None),
            ])
            .or_else(vec![
                TxnOp::get(num, None),
                TxnOp::get(self.sig_key(key), None),
                TxnOp::get(self.fence_key(), None),
            ]);
        let (floor, block_floor) = (self.revision_floor(), self.block_floor(key));
        let resp = self.txn(true, &txn)?;
        self.observe(resp.header(), floor)?;
        if resp.succeeded() {
            let rev = resp
                .header()
                .map_or(0, etcd_client::ResponseHeader::revision);
            Ok(Ok(rev))
        } else {
            let seen = self.seen_in(resp.op_responses())?;
            Ok(Err(self.above_floor(key, seen, block_floor)?))
        }
    }

    fn forget(&self, key: &WatermarkKey) {
        lock(&self.seen).remove(key);
    }

    fn remember(&self, key: &WatermarkKey, seen: Seen) {
        lock(&self.seen).insert(*key, seen);
    }

    fn reserve_inner(
        &self,
        key: &WatermarkKey,
        request: &Request,
        digest: &Checksum256,
        wall_slot: u32,
        retry: RetryPolicy,
    ) -> Result<Reserved, ReserveError> {
        let missing = || StoreError::Missing {
            key: key.to_string(),
        };
        let cached = lock(&self.seen).get(key).copied();
        let mut fresh = cached.is_none();
        let mut current = match cached {
            Some(s) => s,
            None => self.read(key)?.ok_or_else(missing)?,
        };
        for _ in 0..MAX_ATTEMPTS {
            let (stored, _) = current;

            if !fresh && stored.signature.is_none() && stored.digest == *digest {
                // The identical request of a reservation this replica saw unsigned: another
                // replica may have committed its signature since (a commit does not move the
                // watermark's revision), so look before signing the same content again.
                current = self.read(key)?.ok_or_else(missing)?;
                fresh = true;
                continue;
            }
            let next = match decide(Some(&stored), request, digest, wall_slot, retry) {
                Decision::Replay(sig) => {
                    self.remember(key, current);
                    return Ok(Reserved::Replay(sig));
                }
                Decision::Refuse(reason) => {
                    self.remember(key, current);
                    let r = Refusal::new(reason, Some(&stored), request, digest, wall_slot);
                    return Err(r.into());
                }
                Decision::Advance(next) => next,
            };
            let block_request = matches!(request, Request::Block { .. });
            let started_at = current.1;
            match self.swap(key, Some(&current), &next, block_request)? {
                Ok(rev) => {
                    lock(&self.journal).record(&journal_key(key), next.block_num, rev)?;
                    self.remember(key, (next, rev));
                    return Ok(Reserved::Proceed(Reservation::recorded(*key, next, rev)));
                }
                // Another replica moved it: the rules decide again on what it holds now.
                Err(Some(now)) if now.1 == started_at => {
                    // The revision compare held, so a value compare failed: the slot key
                    // disagrees with the block key (written by something other than a signer).
                    return Err(StoreError::Corrupt {
                        path: self.slot_key(key),
                        detail: "disagrees with its block key: re-import this watermark".into(),
                    }
                    .into());
                }
                Err(Some(now)) => {
                    current = now;
                    fresh = true;
                }
                Err(None) => return Err(missing().into()),
            }
        }
        Err(StoreError::Contended {
            key: key.to_string(),
            attempts: MAX_ATTEMPTS,
        }
        .into())
    }

    /// A read-modify-write outside the signing path (import, hand-over): `step` decides from
    /// the current watermark what to write (`None`: nothing), retried while others move it.
    fn update(
        &self,
        key: &WatermarkKey,
        mut step: impl FnMut(Option<&Watermark>) -> Result<Option<Watermark>, StoreError>,
    ) -> Result<Option<Watermark>, StoreError> {
        let mut current = self.read(key)?;
        for _ in 0..MAX_ATTEMPTS {
            let Some(next) = step(current.as_ref().map(|(w, _)| w))? else {
                return Ok(current.map(|(w, _)| w));
            };
            match self.swap(key, current.as_ref(), &next, true)? {
                Ok(rev) => {
                    self.remember(key, (next, rev));
                    return Ok(Some(next));
                }
                Err(now) => current = now,
            }
        }
        Err(StoreError::Contended {
            key: key.to_string(),
            attempts: MAX_ATTEMPTS,
        })
    }
}

impl WatermarkStore for EtcdStore {
    fn reserve(
        &self,
        key: &WatermarkKey,
        request: &Request,
        digest: &Checksum256,
        wall_slot: u32,
        retry: RetryPolicy,
    ) -> Result<Reserved, ReserveError> {
        let out = self.reserve_inner(key, request, digest, wall_slot, retry);
        if matches!(out, Err(ReserveError::Store(_))) {
            // The next request reads again rather than trust a view an error cut short.
            self.forget(key);
        }
        out
    }

    fn commit(
        &self,
        reservation: Reservation,
        signature: &Signature,
    ) -> Result<Signature, StoreError> {
        // The reservation's journal line is durable before its signature leaves (its sync ran
        // while the backend signed).
        let (syncer, ticket) = {
            let j = lock(&self.journal);
            (j.syncer(), j.written())
        };
        if let Some(syncer) = syncer {
            syncer.durable(ticket)?;
        }
        let key = *reservation.key();
        let (reserved, rev) = reservation.version().ok_or(StoreError::Stale)?;
        // What this replica knows of that reservation now: an identical request may have
        // committed its signature already.
        let current = {
            let mut seen = lock(&self.seen);
            let current = match seen.get(&key) {
                Some((w, r)) if *r == rev => *w,
                _ => reserved,
            };
            let step = super::commit_step(Some(&current), reservation.digest(), signature)?;
            match step {
                CommitStep::Keep(existing) => return Ok(existing),
                CommitStep::Write(w) => {
                    if seen.get(&key).is_some_and(|(_, r)| *r == rev) {
                        seen.insert(key, (w, rev));
                    }
                }
            }
            current
        };
        let committed = Committed {
            revision: rev,
            digest: current.digest,
            signature: *signature,
            replica: self.replica.clone(),
        };
        let value = serde_json::to_vec(&committed).map_err(|e| unreachable(e.to_string()))?;
        // Off the reply's path: lands only while the reservation is still the current one.
        let txn = Txn::new()
            .when(vec![Compare::mod_revision(
                self.num_key(&key),
                CompareOp::Equal,
                rev,
            )])
            .and_then(vec![TxnOp::put(self.sig_key(&key), value, None)]);
        // A full queue drops the commit: an identical retry then signs the same content again.
        let _ = self.commits.try_send(CommitJob {
            key,
            rev,
            txn,
            at: tokio::time::Instant::now(),
        });
        Ok(*signature)
    }

    fn get(&self, key: &WatermarkKey) -> Result<Option<Watermark>, StoreError> {
        Ok(self.read(key)?.map(|(w, _)| w))
    }

    fn export(&self) -> Result<Vec<WatermarkRecord>, StoreError> {
        let prefix = format!("{}/wm/", self.prefix);
        let floor = self.revision_floor();
        let resp = self.call(false, |mut kv| {
            let prefix = prefix.clone();
            async move {
                kv.get(
                    prefix,
                    Some(GetOptions::new().with_keys_only().with_prefix()),
                )
                .await
            }
        })?;
        self.observe(resp.header(), floor)?;
        let mut out = Vec::new();
        for item in resp.kvs() {
            let path = String::from_utf8_lossy(item.key());
            let Some(rest) = path
                .strip_prefix(&prefix)
                .and_then(|r| r.strip_suffix("/num"))
            else {
                continue;
            };
            let corrupt = |detail: &str| StoreError::Corrupt {
                path: format!("etcd key {path}"),
                detail: detail.into(),
            };
            let (chain, scope) = rest
                .split_once('/')
                .ok_or_else(|| corrupt("no chain/scope"))?;
            let chain_id = chain
                .parse::<Checksum256>()
                .map_err(|e| corrupt(&e.to_string()))?;
            let scope = scope.parse().map_err(|e: String| corrupt(&e))?;
            let key = WatermarkKey { chain_id, scope };
            // Each watermark with its committed signature, as a reservation would see it.
            if let Some((watermark, _)) = self.read(&key)? {
                out.push(WatermarkRecord::new(&key, watermark));
            }
        }
        out.sort_by_key(|r| (r.chain_id, r.scope));
        Ok(out)
    }

    fn import(&self, record: &WatermarkRecord, force: bool) -> Result<(), StoreError> {
        let key = record.watermark_key();
        self.update(&key, |current| {
            super::check_import(current, record, force)?;
            Ok(Some(record.watermark))
        })?;
        Ok(())
    }

    fn raise(
        &self,
        key: &WatermarkKey,
        from: &PublicKey,
        floor: &Watermark,
    ) -> Result<Watermark, StoreError> {
        self.update(key, |current| Ok(super::handover(from, floor, current)))?
            .ok_or(StoreError::Stale)
    }

    fn seal(&self, member: &WatermarkKey, scope: &WatermarkKey) -> Result<(), StoreError> {
        let key = *member.scope.key().ok_or(StoreError::Stale)?;
        // The seal's compare-and-swap expects the member's watermark the raise read: a
        // signature another replica reserved in between makes it fail, and the step runs again
        // on the newer watermark.
        self.update(member, |current| {
            if let Some(w) = super::carried(current) {
                self.raise(scope, &key, w)?;
            }
            Ok(super::seal_step(&key, current))
        })?;
        Ok(())
    }

    fn shared(&self) -> bool {
        true
    }

    fn health(&self) -> Result<(), StoreError> {
        // A linearizable read (answers only with a leader) of the fence.
        let floor = self.revision_floor();
        let get = |mut kv: KvClient| {
            let key = self.fence_key();
            async move { kv.get(key, None).await }
        };
        // Asked twice at most: the client answers the first request after a member came back
        // with that member's last connection error before it reconnects, and a read is always
        // safe to repeat. Readiness should not flap on that one stale error.
        let resp = match self.call(false, get) {
            Err(StoreError::Unreachable { .. }) => self.call(false, get)?,
            other => other?,
        };
        self.observe(resp.header(), floor)?;
        match resp.kvs().first() {
            Some(fence) => Err(StoreError::Fenced {
                detail: String::from_utf8_lossy(fence.value()).into_owned(),
            }),
            None => Ok(()),
        }
    }
}

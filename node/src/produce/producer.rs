//! The producer loop: one block per 500 ms slot, signed by the signer, verified, logged.
//!
//! Failover between instances of one producer (same key, same signer):
//!
//! - Every instance runs this loop. An *active* instance produces at every slot. The signer lets
//!   only one block per height through (its watermark), so when two instances are active one of
//!   them is refused `DOUBLE_SIGN`; the loser logs a WARN with the reason and becomes *standby*.
//! - A standby follows the other instances' block logs (`follow`, standing in for p2p): each new
//!   block is adopted as head only if it links to the head, its transaction merkle root matches
//!   and its signature recovers to the producer key. Adopted blocks are appended to this
//!   instance's own log byte for byte, so every log holds the same chain.
//! - When no block has arrived for `takeover_slots` slots (the active instance died or lost the
//!   signer), the standby tries to produce; the signer decides who wins.
//! - If an instance dies after the signer signed its block but before the block reached its
//!   log, the height would be lost (the watermark refuses any other block there). Each instance
//!   therefore records a block in `pending.bin` before asking for a signature; on a refusal (and
//!   at start-up) an instance replays a pending block that builds on its head, its own or a
//!   followed one, and the signer answers an identical request with the stored signature.
//!
//! - A key rotation retires the producer's key at its hand-over. When the signer answers
//!   `KEY_RETIRED` (or a followed block is signed by another key), the producer asks the signer
//!   for its keys and moves to the retired key's nearest active successor ([`super::handover`]),
//!   at once, without a config edit or a restart; the successor shares the producer's
//!   watermark, so no height is signed twice across the switch.
//!
//! Guards: nothing is appended to the log that does not verify by recovery to the key the
//! producer signs with (the configured key, or the successor the signer named at a hand-over);
//! spooled transactions leave the spool only once their block is logged.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use oryx_proto::antelope::block::num_from_id;
use oryx_proto::antelope::merkle::LegacyIncrementalMerkle;
use oryx_proto::antelope::signed_block::SignedBlock;
use oryx_proto::antelope::{BlockTimestamp, Checksum256, Pack as _, PublicKey, Signature};
use oryx_proto::blocklog::{BlockLog, Entry, Head, LogTail};
use oryx_proto::client::reason;
use oryx_proto::grpc;

use super::assemble::{self, Unsigned};
use super::handover::{self, Handover};
use super::spool::Spool;
use super::stats::ProduceStats;
use super::{Mode, Settings};
use crate::NodeError;
use crate::failover::{CallError, Signers};

/// How long one SignBlock may take, over every replica asked, before the slot is given up.
const SIGN_TIMEOUT: Duration = Duration::from_secs(2);

/// Least time between two key-list requests caused by followed blocks signed by another key
/// (a forged log must not turn into a ListKeys per slot).
const KEY_CHECK_INTERVAL: Duration = Duration::from_secs(2);

/// Whether this instance produces or waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Produces at every slot.
    Active,
    /// Follows the others; tries again at `retry_at` if the chain has gone quiet by then.
    Standby {
        /// Earliest slot of the next attempt.
        retry_at: u32,
    },
}

/// What one attempt to produce did.
#[derive(Debug)]
enum Attempt {
    /// Logged; `replayed`: the signer had already signed this identical block for another
    /// instance (same head, slot and transactions), so that instance is producing.
    Produced {
        replayed: bool,
    },
    Refused {
        reason: String,
        message: String,
    },
    Failed(String),
}

/// The producer's state.
pub struct Producer {
    s: Settings,
    signers: Signers,
    /// The key blocks are signed with: the configured one until a hand-over moves it.
    key: PublicKey,
    /// A followed block did not recover to `key`: ask the signer whether the key was handed
    /// over (at most once per [`KEY_CHECK_INTERVAL`]).
    other_key_seen: bool,
    /// When the signer was last asked for its keys.
    key_checked: Option<Instant>,
    log: BlockLog,
    head: Head,
    /// Blockroot merkle over genesis and every logged block id (legacy headers sign its root).
    ids: LegacyIncrementalMerkle,
    included: HashSet<Checksum256>,
    spool: Option<Spool>,
    tails: Vec<LogTail>,
    waiting: BTreeMap<u32, Entry>,
    role: Role,
    schedule_hash: Checksum256,
    /// Consecutive slots the signer was unreachable.
    unreachable: u64,
    /// Consecutive slots refused for a reason other than DOUBLE_SIGN.
    refusals: u64,
    warned: HashSet<String>,
    stats: Arc<ProduceStats>,
}

/// The ids of a block's transactions (those that decode).
fn trx_ids(block: &SignedBlock) -> impl Iterator<Item = Checksum256> + '_ {
    block.transactions.iter().filter_map(|r| r.trx_id().ok())
}

fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Producer {
    /// Opens the block log (repairing a torn tail), restores the head from it, opens the spool.
    pub fn open(s: Settings, signers: Signers) -> Result<Producer, NodeError> {
        let (log, recovery, entries) = BlockLog::open(&s.block_log)?;
        if recovery.truncated_bytes > 0 || recovery.index_rebuilt {
            tracing::warn!(
                dir = %s.block_log.display(),
                truncated_bytes = recovery.truncated_bytes,
                index_rebuilt = recovery.index_rebuilt,
                "block log repaired after an unclean stop"
            );
        }
        let mut ids = LegacyIncrementalMerkle::new();
        ids.append(s.genesis);
        let mut included = HashSet::new();
        let mut head = Head {
            block_num: num_from_id(&s.genesis),
            id: s.genesis,
            timestamp: BlockTimestamp(0),
        };
        if let Some(first) = entries.first()
            && first.block.header.previous != s.genesis
        {
            return Err(NodeError::ForeignBlockLog {
                dir: s.block_log.clone(),
                parent: first.block.header.previous,
                genesis: s.genesis,
            });
        }
        for e in &entries {
            head = Head::of(&e.block)?;
            ids.append(head.id);
            included.extend(trx_ids(&e.block));
        }
        let spool = s.spool.as_deref().map(Spool::open).transpose()?;
        let schedule_hash = assemble::legacy_schedule_hash(
            match s.mode {
                Mode::Legacy { schedule_version } => schedule_version,
                Mode::Savanna => 0,
            },
            s.producer,
            &s.key,
        );
        let key = s.key;
        let tails = s.follow.iter().map(|d| LogTail::new(d)).collect();
        let stats = Arc::new(ProduceStats::new(signers.clone()));
        stats
            .head
            .store(u64::from(head.block_num), Ordering::Relaxed);
        Ok(Producer {
            s,
            signers,
            key,
            other_key_seen: false,
            key_checked: None,

            log,
            head,
            ids,
            included,
            spool,
            tails,
            waiting: BTreeMap::new(),
            role: Role::Active,
            schedule_hash,
            unreachable: 0,
            refusals: 0,
            warned: HashSet::new(),
            stats,
        })
    }

    /// The counters `/metrics` shows.
    pub fn stats(&self) -> Arc<ProduceStats> {
        Arc::clone(&self.stats)
    }

    /// The head block.
    pub fn head(&self) -> Head {
        self.head
    }

    /// The current role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The key blocks are signed with now.
    pub fn key(&self) -> PublicKey {
        self.key
    }

    /// Asks the signer whether the key in use is still active on this chain and, if a
    /// rotation retired it, moves to its nearest active successor. Returns whether it moved.
    pub async fn follow_handover(&mut self) -> bool {
        self.key_checked = Some(Instant::now());
        let answer = self
            .signers
            .call(SIGN_TIMEOUT, |mut c| async move {
                c.list_keys(grpc::ListKeysRequest {}).await
            })
            .await;
        let keys = match answer {
            Ok(a) => a.value.keys,
            Err(e) => {
                tracing::warn!(key = %self.key, "cannot ask the signer whether the key was handed over: {e}");
                return false;
            }
        };
        match handover::follow(&self.key, &self.s.chain_id, &keys) {
            Handover::Keep => false,
            Handover::To(next) => {
                tracing::warn!(
                    from = %self.key,
                    to = %next,
                    block_num = self.head.block_num.saturating_add(1),
                    "the signer retired {} at a rotation's hand-over; producing with its successor {next} from here (set `public_key` under [produce] to it before the next restart)",
                    self.key
                );
                self.key = next;
                if let Mode::Legacy { schedule_version } = self.s.mode {
                    self.schedule_hash =
                        assemble::legacy_schedule_hash(schedule_version, self.s.producer, &next);
                    tracing::info!(pending_schedule_hash = %self.schedule_hash, "legacy headers from here on use this schedule hash");
                }
                true
            }
            Handover::Unresolved(why) => {
                let key = self.key;
                self.warn_once(format!("handover {key} {why}"), || {
                    format!("{key} is not active in the signer and no hand-over to follow: {why}")
                });
                false
            }
        }
    }

    fn legacy_inputs(&self) -> Option<(Checksum256, Checksum256)> {
        match self.s.mode {
            Mode::Savanna => None,
            Mode::Legacy { .. } => Some((self.ids.root(), self.schedule_hash)),
        }
    }

    /// Runs until `shutdown` resolves.
    pub async fn run(&mut self, shutdown: impl std::future::Future<Output = ()>) {
        tracing::info!(
            producer = %self.s.producer,
                        key = %self.key,
            block_log = %self.s.block_log.display(),
            head = self.head.block_num,
            head_id = %self.head.id,
            mode = ?self.s.mode,
            follow = self.tails.len(),
            "producer starting"
        );
        if let Mode::Legacy { .. } = self.s.mode {
            tracing::info!(pending_schedule_hash = %self.schedule_hash, "legacy headers: pass this hash to `oryx inspect blocklog --schedule-hash` to verify the log");
        }
        let _ = self.signers.wait_connected(Duration::from_secs(5)).await;
        self.follow_handover().await;
        self.sync_follow();
        self.replay_pending().await;
        tokio::pin!(shutdown);
        loop {
            let now = unix_ms();
            let now_slot = BlockTimestamp::from_unix_ms(now).map_or(0, |t| t.slot());
            let slot = now_slot
                .saturating_add(1)
                .max(self.head.timestamp.slot().saturating_add(1));
            let wait = BlockTimestamp(slot).to_unix_ms().saturating_sub(now);
            tokio::select! {
                () = &mut shutdown => break,
                () = tokio::time::sleep(Duration::from_millis(u64::try_from(wait).unwrap_or(0))) => {}
            }
            self.step(slot).await;
        }
        tracing::info!(head = self.head.block_num, head_id = %self.head.id, "producer stopped");
    }

    /// One slot: adopt what others produced, then produce if this instance should.
    pub async fn step(&mut self, slot: u32) {
        self.step_inner(slot).await;
        self.stats
            .active
            .store(self.role == Role::Active, Ordering::Relaxed);
    }

    async fn step_inner(&mut self, slot: u32) {
        let mut adopted = self.sync_follow();
        let due = self
            .key_checked
            .is_none_or(|t| t.elapsed() >= KEY_CHECK_INTERVAL);
        if self.other_key_seen && due {
            self.other_key_seen = false;
            if self.follow_handover().await {
                adopted += self.sync_follow();
            }
        }
        if adopted > 0 && self.role == Role::Active {
            tracing::info!(
                head = self.head.block_num,
                "another instance is producing; standing by"
            );
            self.role = Role::Standby {
                retry_at: slot.saturating_add(self.s.takeover_slots),
            };
        }
        if let Role::Standby { retry_at } = self.role {
            let quiet = slot.saturating_sub(self.head.timestamp.slot());
            if slot < retry_at || quiet <= self.s.takeover_slots {
                return;
            }
            if self.head.timestamp.slot() == 0 {
                tracing::info!(
                    head = self.head.block_num,
                    "no block yet on this chain; trying to produce"
                );
            } else {
                tracing::info!(
                    head = self.head.block_num,
                    quiet_slots = quiet,
                    "no block for {quiet} slots; trying to take over"
                );
            }
        }
        let mut attempt = self.produce(slot).await;
        if matches!(&attempt, Attempt::Refused { reason, .. } if reason == "KEY_RETIRED")
            && self.follow_handover().await
        {
            attempt = self.produce(slot).await;
        }
        let counter = match &attempt {
            Attempt::Produced { replayed: true } => &self.stats.replayed,
            Attempt::Produced { replayed: false } => &self.stats.produced,
            Attempt::Refused { .. } => &self.stats.refused,
            Attempt::Failed(_) => &self.stats.failed_slots,
        };
        ProduceStats::bump(counter);
        match attempt {
            Attempt::Produced { replayed: true } => {
                tracing::info!(
                    block_num = self.head.block_num,
                    "another instance had this identical block signed first; standing by"
                );
                self.role = Role::Standby {
                    retry_at: slot.saturating_add(self.s.takeover_slots),
                };
            }
            Attempt::Produced { replayed: false } => {
                self.refusals = 0;
                if self.role != Role::Active {
                    tracing::info!(head = self.head.block_num, "now the active producer");
                }
                self.role = Role::Active;
            }
            Attempt::Refused { reason, message } if reason == "DOUBLE_SIGN" => {
                self.refusals = 0;
                tracing::warn!(
                    block_num = self.head.block_num.saturating_add(1),
                    slot,
                    reason = %reason,
                    "the signer refused the block: {message}; standing by and following the other instances"
                );
                self.replay_pending().await;
                self.role = Role::Standby {
                    retry_at: slot.saturating_add(self.s.takeover_slots),
                };
            }
            // Any other refusal (policy, configuration) repeats every slot until the operator
            // fixes it: one line per doubling, not two a second.
            Attempt::Refused { reason, message } => {
                self.refusals += 1;
                if self.refusals.is_power_of_two() {
                    tracing::warn!(
                        block_num = self.head.block_num.saturating_add(1),
                        slot,
                        reason = %reason,
                        refused_slots = self.refusals,
                        "the signer refused the block: {message}; no block until that is fixed"
                    );
                }
            }
            // While the signer is unreachable, one line per doubling of the outage, not one
            // per slot.
            Attempt::Failed(why) if self.unreachable > 1 && !self.unreachable.is_power_of_two() => {
                tracing::debug!(slot, "no block this slot: {why}");
            }
            Attempt::Failed(why) => {
                tracing::warn!(
                    block_num = self.head.block_num.saturating_add(1),
                    slot,
                    failed_slots = self.unreachable.max(1),
                    "no block this slot: {why}"
                );
            }
        }
    }

    /// Builds, signs, verifies and logs the block after the head at `slot`.
    async fn produce(&mut self, slot: u32) -> Attempt {
        // A block this instance sent earlier without learning the outcome (a timeout, a lost
        // connection, a crash) is sent again, identical, before anything new is built at its
        // height: the signer may have signed it, and then no other block can ever take that
        // height. The signer answers with the stored signature, or signs it now.
        match Unsigned::read_pending(&self.s.block_log) {
            Some(Ok(u))
                if u.header.previous == self.head.id && u.header.producer == self.s.producer =>
            {
                tracing::info!(
                    block_num = self.head.block_num.saturating_add(1),
                    slot = u.header.timestamp.slot(),
                    "sending the unanswered pending block again before building a new one"
                );
                return self.finish(u, Instant::now(), None).await;
            }
            Some(Err(e)) => {
                tracing::warn!("ignoring an unreadable pending block: {e}");
            }
            _ => {}
        }
        let start = Instant::now();
        let timestamp = BlockTimestamp(slot);
        let txs = match &self.spool {
            Some(sp) => sp.take(
                self.s.max_transactions,
                timestamp,
                &self.s.chain_id,
                &self.included,
            ),
            None => Vec::new(),
        };
        let receipts = txs
            .into_iter()
            .map(|t| assemble::receipt(t.trx, self.s.cpu_usage_us))
            .collect();
        let unsigned = Unsigned::build(
            self.s.mode,
            self.s.producer,
            &self.head,
            timestamp,
            receipts,
            self.legacy_inputs(),
        );
        if let Err(e) = unsigned.write_pending(&self.s.block_log) {
            return Attempt::Failed(e.to_string());
        }
        self.finish(unsigned, start, Some(slot)).await
    }

    /// Signs and logs `unsigned` (this instance's pending block), then clears the pending file;
    /// a definite refusal clears it too. Transport failures and `UNAVAILABLE` keep it, to be
    /// sent again.
    async fn finish(&mut self, unsigned: Unsigned, start: Instant, slot: Option<u32>) -> Attempt {
        let (signature, replayed) = match self.sign(&unsigned).await {
            Ok(s) => s,
            Err(a) => {
                if let Attempt::Refused { reason, .. } = &a
                    && reason != "UNAVAILABLE"
                    && let Err(e) = Unsigned::remove_pending(&self.s.block_log)
                {
                    return Attempt::Failed(e.to_string());
                }
                return a;
            }
        };
        let n = unsigned.transactions.len();
        let slot = slot.unwrap_or(unsigned.header.timestamp.slot());
        let block = unsigned.sign(signature);
        if let Err(e) = self.append(&block) {
            return Attempt::Failed(e.to_string());
        }
        if let Err(e) = Unsigned::remove_pending(&self.s.block_log) {
            tracing::warn!("{e}");
        }
        tracing::info!(
            block_num = self.head.block_num,
            id = %self.head.id,
            slot,
            trx = n,
            replayed,
            elapsed_us = start.elapsed().as_micros() as u64,
            "produced block"
        );
        Attempt::Produced { replayed }
    }

    /// Asks the signer to sign `u` and checks the answer by recovery.
    async fn sign(&mut self, u: &Unsigned) -> Result<(Signature, bool), Attempt> {
        let digest = u.digest().map_err(|e| Attempt::Failed(e.to_string()))?;
        let (bm, sh) = u.legacy_inputs.map_or((Vec::new(), Vec::new()), |(b, s)| {
            (b.0.to_vec(), s.0.to_vec())
        });
        let req = grpc::SignBlockRequest {
            chain_id: self.s.chain_id.0.to_vec(),
            public_key: self.key.to_string(),
            header: u.header.packed(),
            blockroot_merkle_root: bm,
            pending_schedule_hash: sh,
        };
        let asked = Instant::now();
        // The identical request goes to the next replica if one fails (they share one
        // watermark), within the slot's budget.
        let answer = self
            .signers
            .call(SIGN_TIMEOUT, |mut c| {
                let req = req.clone();
                async move { c.sign_block(req).await }
            })
            .await;
        let resp = match answer {
            Ok(a) => {
                self.unreachable = 0;
                self.stats.sign_block.record(asked.elapsed());
                if a.failovers > 0 {
                    tracing::info!(replica = %a.replica, failovers = a.failovers, "block signed by another signer replica");
                }
                a.value
            }
            Err(CallError::Refused(status)) => {
                self.unreachable = 0;
                return Err(Attempt::Refused {
                    reason: reason(&status).unwrap_or_default(),
                    message: status.message().to_string(),
                });
            }
            Err(CallError::Unavailable(why)) => {
                self.unreachable += 1;
                return Err(Attempt::Failed(why));
            }
        };
        let sig = resp
            .signature
            .as_ref()
            .ok_or_else(|| Attempt::Failed("the signer's answer has no signature".into()))
            .and_then(|s| {
                Signature::parse(&s.text).map_err(|e| {
                    Attempt::Failed(format!("the signer's signature does not parse: {e}"))
                })
            })?;
        if resp.digest != digest.0 {
            return Err(Attempt::Failed(format!(
                "the signer signed digest {} but this block's digest is {digest}: not logging it",
                hex::encode(&resp.digest)
            )));
        }
        if !sig.recovers_to(&digest, &self.key) {
            return Err(Attempt::Failed(format!(
                "the signature does not recover to {} over {digest}: not logging it",
                self.key
            )));
        }
        Ok((sig, resp.replayed))
    }

    /// Appends a verified block and moves the head.
    fn append(&mut self, block: &SignedBlock) -> Result<(), NodeError> {
        let head = self.log.append(block)?;
        if let Some(e) = self.log.index_error().map(str::to_string) {
            self.warn_once(format!("index {e}"), || {
                format!("the block log's index could not be written ({e}); the log is intact and the index is rebuilt at the next start")
            });
        }
        self.head = head;
        self.stats
            .head
            .store(u64::from(head.block_num), Ordering::Relaxed);
        self.ids.append(head.id);
        let ids: HashSet<Checksum256> = trx_ids(block).collect();
        if let Some(sp) = &self.spool {
            sp.retire_ids(&ids);
        }
        self.included.extend(ids);
        Ok(())
    }

    /// Checks a block from elsewhere before it becomes the head: its link, then its signature.
    fn verify(&self, block: &SignedBlock) -> Result<(), NodeError> {
        self.verify_link(block)?;
        self.verify_signature(block)
    }

    /// The block continues the head: producer, previous, slot and transaction root.
    fn verify_link(&self, block: &SignedBlock) -> Result<(), NodeError> {
        let refuse = NodeError::Unverified;
        let h = &block.header;
        if h.producer != self.s.producer {
            return Err(refuse(format!(
                "produced by {}, not {}",
                h.producer, self.s.producer
            )));
        }
        if h.previous != self.head.id {
            return Err(refuse(format!(
                "its previous {} is not the head {}",
                h.previous, self.head.id
            )));
        }
        if h.timestamp <= self.head.timestamp {
            return Err(refuse(format!(
                "its slot {} is not after the head's {}",
                h.timestamp.slot(),
                self.head.timestamp.slot()
            )));
        }
        if !block.transaction_mroot_matches() {
            return Err(refuse(
                "its transaction_mroot does not match its transactions".into(),
            ));
        }
        Ok(())
    }

    /// The block's signature recovers to the key in use.
    fn verify_signature(&self, block: &SignedBlock) -> Result<(), NodeError> {
        let inputs = self.legacy_inputs();
        let digest = block.signing_digest(inputs.as_ref().map(|(a, b)| (a, b)))?;
        if !block.producer_signature.recovers_to(&digest, &self.key) {
            return Err(NodeError::Unverified(format!(
                "its signature does not recover to {}",
                self.key
            )));
        }
        Ok(())
    }

    fn warn_once(&mut self, key: String, msg: impl FnOnce() -> String) {
        if self.warned.insert(key) {
            tracing::warn!("{}", msg());
        }
    }

    /// Reads the followed logs and adopts every block that continues the head. Returns how
    /// many were adopted.
    pub fn sync_follow(&mut self) -> usize {
        for i in 0..self.tails.len() {
            match self.tails[i].poll() {
                Ok(entries) => {
                    for e in entries {
                        let Ok(n) = e.block.header.block_num() else {
                            continue;
                        };
                        if n > self.head.block_num {
                            self.waiting.entry(n).or_insert(e);
                        } else if let Ok(Some(mine)) = self.log.read_raw(n)
                            && mine != e.bytes
                        {
                            let path = self.tails[i].path().display().to_string();
                            self.warn_once(format!("fork {path} {n}"), || {
                                format!("{path} has a different block at height {n} than this log: ignoring it (two blocks at one height must never both be signed; check the signer's watermark)")
                            });
                        }
                    }
                }
                Err(e) => {
                    let path = self.tails[i].path().display().to_string();
                    self.warn_once(format!("tail {path}"), || {
                        format!("cannot follow {path}: {e}")
                    });
                }
            }
        }
        let mut adopted = 0;
        while let Some(e) = self.waiting.remove(&(self.head.block_num.wrapping_add(1))) {
            let checked = self
                .verify_link(&e.block)
                .map_err(|why| (why, false))
                .and_then(|()| self.verify_signature(&e.block).map_err(|why| (why, true)));
            match checked {
                Ok(()) => match self.append(&e.block) {
                    Ok(()) => {
                        adopted += 1;
                        ProduceStats::bump(&self.stats.adopted);
                        tracing::debug!(block_num = self.head.block_num, id = %self.head.id, "adopted a followed block");
                    }
                    Err(err) => {
                        tracing::warn!("cannot log a followed block: {err}");
                        break;
                    }
                },
                Err((why, signature)) => {
                    let n = self.head.block_num.wrapping_add(1);
                    self.warn_once(format!("bad {n} {}", e.offset), || {
                        format!("a followed block at height {n} is not adopted: {why}")
                    });
                    if signature {
                        // Perhaps another instance followed a hand-over first: kept until
                        // the signer has been asked.
                        self.other_key_seen = true;
                        self.waiting.insert(n, e);
                        break;
                    }
                }
            }
        }
        // Keep the buffer to blocks that may still connect.
        let head = self.head.block_num;
        self.waiting.retain(|n, _| *n > head);
        if self.waiting.len() > 10_000 {
            self.waiting.clear();
        }
        adopted
    }

    /// Replays a pending block (this instance's or a followed one's) that builds on the head:
    /// if the signer already signed it, its answer is the stored signature and the block is
    /// logged instead of lost.
    async fn replay_pending(&mut self) {
        let mut dirs = vec![self.s.block_log.clone()];
        dirs.extend(self.s.follow.iter().cloned());
        for dir in dirs {
            let u = match Unsigned::read_pending(&dir) {
                None => continue,
                Some(Err(e)) => {
                    tracing::debug!("pending block unreadable: {e}");
                    continue;
                }
                Some(Ok(u)) => u,
            };
            if u.header.previous != self.head.id || u.header.producer != self.s.producer {
                continue;
            }
            match self.sign(&u).await {
                Ok((sig, _)) => {
                    let block = u.sign(sig);
                    if let Err(e) = self.verify(&block).and_then(|()| self.append(&block)) {
                        tracing::warn!("a replayed pending block was not logged: {e}");
                        continue;
                    }
                    tracing::info!(
                        block_num = self.head.block_num,
                        id = %self.head.id,
                        from = %dir.display(),
                        "logged a block the signer had already signed at this height, from a pending file (its instance may have stopped before logging it)"
                    );
                    return;
                }
                Err(_) => continue,
            }
        }
    }
}

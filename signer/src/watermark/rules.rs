//! The double-sign rules as a pure function: stored watermark + request → decision.
//!
//! Guards (DESIGN.md §4): a content-aware block request is signed only above the stored block
//! number *and* slot; a blind Savanna digest (a block id) only above the stored block number; a
//! blind legacy digest only in a later wall-clock slot than the last one. An identical request
//! replays the stored signature. Everything else at or below the watermark is refused.

use oryx_proto::antelope::block::num_from_id;
use oryx_proto::antelope::{Checksum256, Signature};

/// What a key last signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Watermark {
    /// Highest block number signed.
    pub block_num: u32,
    /// Highest block timestamp slot signed (content-aware requests).
    pub slot: u32,
    /// Wall-clock slot of the last signature (blind requests).
    pub wall_slot: u32,
    /// Digest of the last signature.
    pub digest: Checksum256,
    /// The last signature, once committed (absent between reserve and commit).
    pub signature: Option<Signature>,
}

impl Watermark {
    /// Closed for good: a key's own watermark after it moved into its producer's
    /// ([`super::seal_step`]). Nothing is at or above it.
    pub fn is_sealed(&self) -> bool {
        self.block_num == u32::MAX && self.slot == u32::MAX && self.wall_slot == u32::MAX
    }
}

/// A request's position, as the signer derived it from what it was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// SignBlock: the full header was sent and the digest recomputed from it.
    Block {
        /// Block number from the header.
        block_num: u32,
        /// Timestamp slot from the header.
        slot: u32,
    },
    /// SignDigest with a Savanna block id: the block number is its first 4 bytes.
    BlindSavanna,
    /// SignDigest with an opaque legacy digest: only the wall-clock slot guards it.
    BlindLegacy,
}

impl Request {
    /// A readable position for logs and refusals.
    pub fn describe(&self, digest: &Checksum256, wall_slot: u32) -> String {
        match self {
            Request::Block { block_num, slot } => {
                format!("block {block_num}, slot {slot}, digest {digest}")
            }
            Request::BlindSavanna => {
                format!("block {} (from id), digest {digest}", num_from_id(digest))
            }
            Request::BlindLegacy => format!("wall-clock slot {wall_slot}, digest {digest}"),
        }
    }
}

/// Whether a blind Savanna digest at the *same* height but a later wall-clock slot may be signed.
/// nodeos retries a failed or timed-out signing this way; signing it means two different blocks
/// exist at one height if the first one was in fact delivered. The default refuses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetryPolicy {
    /// Refuse a second digest at a height (default).
    #[default]
    Refuse,
    /// Allow one new digest per later wall-clock slot at the same height.
    AllowNextSlot,
}

/// The rules' answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The identical request was signed: return this signature.
    Replay(Signature),
    /// Record this new watermark durably, then sign.
    Advance(Watermark),
    /// Refused: why.
    Refuse(Conflict),
}

/// Which rule a refused request broke, with the positions that show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Conflict {
    /// A header's slot is further ahead of the wall clock than [`MAX_AHEAD_SLOTS`].
    #[error(
        "slot {slot} is more than {MAX_AHEAD_SLOTS} slots ahead of the clock (slot {wall_slot}): check the clocks"
    )]
    SlotAheadOfClock {
        /// The requested slot.
        slot: u32,
        /// The wall-clock slot.
        wall_slot: u32,
    },
    /// A block number further ahead of the signed one than the time since allows.
    #[error(
        "block {block_num} is further ahead of the signed block {signed} than the {elapsed} slots since then allow"
    )]
    TooFarAhead {
        /// The requested block number.
        block_num: u32,
        /// The signed one.
        signed: u32,
        /// Wall-clock slots since the last signature.
        elapsed: u32,
    },
    /// A block at or below the signed height.
    #[error("block {block_num} is not above the signed block {signed}")]
    BlockNotAbove {
        /// The requested block number.
        block_num: u32,
        /// The signed one.
        signed: u32,
    },
    /// A block above the signed height but not above the signed slot.
    #[error("slot {slot} is not above the signed slot {signed}")]
    SlotNotAbove {
        /// The requested slot.
        slot: u32,
        /// The signed one.
        signed: u32,
    },
    /// A different blind block id at the signed height.
    #[error(
        "a different block at the signed height {block_num} (same-height retry is refused by this key's setting)"
    )]
    SameHeight {
        /// The height.
        block_num: u32,
    },
    /// A blind block id below the signed height.
    #[error("block {block_num} is below the signed block {signed}")]
    BlockBelow {
        /// The requested block number.
        block_num: u32,
        /// The signed one.
        signed: u32,
    },
    /// A second opaque legacy digest in one wall-clock slot.
    #[error("a second legacy digest in wall-clock slot {wall_slot} (last signed in slot {last})")]
    SecondLegacyDigest {
        /// The wall-clock slot now.
        wall_slot: u32,
        /// The slot of the last signature.
        last: u32,
    },
}

/// How far ahead of the evidence a position may jump: one hour of slots. A producer's block
/// number advances at most one per slot of wall-clock time, and a header's slot is the time it
/// is produced, so a request beyond this is either a clock an hour off or an attempt to push
/// the watermark out of reach (which would lock the key out of every real block).
pub const MAX_AHEAD_SLOTS: u32 = 7_200;

/// How far a *blind* Savanna block id may run ahead of the last signature plus the slots
/// elapsed since: 20 slots (10 s) of clock skew. Its block number is only the id's first four
/// bytes, which anyone can grind a transaction digest to match; the chain cannot advance more
/// than one block per slot, so a blind id further ahead is not a block, and signing it would
/// push the watermark past the producer's real next blocks.
pub const BLIND_AHEAD_SLOTS: u32 = 20;

/// Decides a request against the stored watermark.
pub fn decide(
    stored: Option<&Watermark>,
    request: &Request,
    digest: &Checksum256,
    wall_slot: u32,
    retry: RetryPolicy,
) -> Decision {
    let block_num = match request {
        Request::Block { block_num, .. } => *block_num,
        Request::BlindSavanna => num_from_id(digest),
        Request::BlindLegacy => stored.map_or(0, |w| w.block_num),
    };
    if let Request::Block { slot, .. } = request
        && *slot > wall_slot.saturating_add(MAX_AHEAD_SLOTS)
    {
        return Decision::Refuse(Conflict::SlotAheadOfClock {
            slot: *slot,
            wall_slot,
        });
    }
    let Some(w) = stored else {
        let slot = match request {
            Request::Block { slot, .. } => *slot,
            _ => 0,
        };
        return Decision::Advance(Watermark {
            block_num,
            slot,
            wall_slot,
            digest: *digest,
            signature: None,
        });
    };
    let identical = w.digest == *digest
        && (matches!(request, Request::BlindLegacy) || w.block_num == block_num);
    if identical {
        return match w.signature {
            Some(sig) => Decision::Replay(sig),
            // Reserved but never committed (a crash or failure between reserve and commit): the
            // same content may be signed again; no signature for it ever left the signer.
            None => Decision::Advance(*w),
        };
    }
    // Identical requests replay above; anything new may not run further ahead than the time
    // since the last signature allows.
    let ahead = match request {
        Request::BlindSavanna => BLIND_AHEAD_SLOTS,
        _ => MAX_AHEAD_SLOTS,
    };
    let reach = w
        .block_num
        .saturating_add(wall_slot.saturating_sub(w.wall_slot))
        .saturating_add(ahead);
    if block_num > reach {
        return Decision::Refuse(Conflict::TooFarAhead {
            block_num,
            signed: w.block_num,
            elapsed: wall_slot.saturating_sub(w.wall_slot),
        });
    }
    let next = |block_num, slot| Watermark {
        block_num,
        slot,
        wall_slot: wall_slot.max(w.wall_slot),
        digest: *digest,
        signature: None,
    };
    match *request {
        Request::Block { block_num, slot } => {
            if block_num > w.block_num && slot > w.slot {
                Decision::Advance(next(block_num, slot))
            } else if block_num <= w.block_num {
                Decision::Refuse(Conflict::BlockNotAbove {
                    block_num,
                    signed: w.block_num,
                })
            } else {
                Decision::Refuse(Conflict::SlotNotAbove {
                    slot,
                    signed: w.slot,
                })
            }
        }
        Request::BlindSavanna => {
            let retry_ok = block_num == w.block_num
                && retry == RetryPolicy::AllowNextSlot
                && wall_slot > w.wall_slot;
            if block_num > w.block_num || retry_ok {
                Decision::Advance(next(block_num, w.slot))
            } else if block_num == w.block_num {
                Decision::Refuse(Conflict::SameHeight { block_num })
            } else {
                Decision::Refuse(Conflict::BlockBelow {
                    block_num,
                    signed: w.block_num,
                })
            }
        }
        Request::BlindLegacy => {
            if wall_slot > w.wall_slot {
                Decision::Advance(next(w.block_num, w.slot))
            } else {
                Decision::Refuse(Conflict::SecondLegacyDigest {
                    wall_slot,
                    last: w.wall_slot,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use oryx_proto::antelope::KeyType;
    use proptest::prelude::*;

    fn d(b: u8) -> Checksum256 {
        Checksum256([b; 32])
    }

    fn id(num: u32, b: u8) -> Checksum256 {
        let mut x = [b; 32];
        x[..4].copy_from_slice(&num.to_be_bytes());
        Checksum256(x)
    }

    fn sig() -> Signature {
        Signature::from_parts(KeyType::K1, 0, &[1; 32], &[2; 32]).unwrap()
    }

    fn wm(block_num: u32, slot: u32, digest: Checksum256, signed: bool) -> Watermark {
        Watermark {
            block_num,
            slot,
            wall_slot: 100,
            digest,
            signature: signed.then(sig),
        }
    }

    enum Want {
        Replay,
        Advance,
        Refuse,
    }

    #[test]
    fn content_aware_table() {
        use Want::*;
        let stored = wm(10, 20, d(1), true);
        // (requested block, slot, digest, expected)
        let table = [
            (11, 21, d(2), Advance),
            (10, 20, d(1), Replay),
            (10, 20, d(2), Refuse),
            (10, 21, d(2), Refuse),
            (11, 20, d(2), Refuse),
            (9, 25, d(2), Refuse),
            (11, 19, d(2), Refuse),
            (12, 30, d(1), Advance),
        ];
        for (i, (n, s, dg, want)) in table.into_iter().enumerate() {
            let got = decide(
                Some(&stored),
                &Request::Block {
                    block_num: n,
                    slot: s,
                },
                &dg,
                100,
                RetryPolicy::Refuse,
            );
            let ok = matches!(
                (&got, want),
                (Decision::Replay(_), Replay)
                    | (Decision::Advance(_), Advance)
                    | (Decision::Refuse(_), Refuse)
            );
            assert!(ok, "row {i}: {got:?}");
        }
    }

    #[test]
    fn blind_savanna_uses_the_block_number_in_the_id() {
        let stored = wm(10, 20, id(10, 1), true);
        let r = RetryPolicy::Refuse;
        assert!(
            matches!(decide(Some(&stored), &Request::BlindSavanna, &id(11, 2), 101, r), Decision::Advance(w) if w.block_num == 11)
        );
        assert!(matches!(
            decide(Some(&stored), &Request::BlindSavanna, &id(10, 1), 101, r),
            Decision::Replay(_)
        ));
        assert!(matches!(
            decide(Some(&stored), &Request::BlindSavanna, &id(10, 2), 101, r),
            Decision::Refuse(_)
        ));
        assert!(matches!(
            decide(Some(&stored), &Request::BlindSavanna, &id(9, 2), 101, r),
            Decision::Refuse(_)
        ));
        // The retry setting allows a new digest at the same height only in a later wall slot.
        let a = RetryPolicy::AllowNextSlot;
        assert!(matches!(
            decide(Some(&stored), &Request::BlindSavanna, &id(10, 2), 101, a),
            Decision::Advance(_)
        ));
        assert!(matches!(
            decide(Some(&stored), &Request::BlindSavanna, &id(10, 2), 100, a),
            Decision::Refuse(_)
        ));
    }

    #[test]
    fn the_watermark_cannot_be_pushed_out_of_reach() {
        let stored = wm(10, 20, id(10, 1), true);
        let r = RetryPolicy::Refuse;
        // A full header: one hour of slots plus the time elapsed is the most a block number
        // may jump; a blind id (grindable): 20 slots plus the time elapsed.
        let block = |n: u32| Request::Block {
            block_num: n,
            slot: 100,
        };
        assert!(matches!(
            decide(Some(&stored), &block(10 + MAX_AHEAD_SLOTS), &d(3), 100, r),
            Decision::Advance(_)
        ));
        assert!(matches!(
            decide(Some(&stored), &block(11 + MAX_AHEAD_SLOTS), &d(3), 100, r),
            Decision::Refuse(_)
        ));
        assert!(matches!(
            decide(
                Some(&stored),
                &Request::BlindSavanna,
                &id(10 + BLIND_AHEAD_SLOTS, 2),
                100,
                r
            ),
            Decision::Advance(_)
        ));
        // A ground digest a few hundred blocks ahead (it passed before): refused.
        for n in [11 + BLIND_AHEAD_SLOTS, 10 + 300, 10 + MAX_AHEAD_SLOTS] {
            assert!(matches!(
                decide(Some(&stored), &Request::BlindSavanna, &id(n, 2), 100, r),
                Decision::Refuse(_)
            ));
        }
        assert!(matches!(
            decide(
                Some(&stored),
                &Request::BlindSavanna,
                &id(u32::MAX, 2),
                100,
                r
            ),
            Decision::Refuse(_)
        ));
        // Time passing lets the chain (and the watermark) move on by one block per slot.
        assert!(matches!(
            decide(
                Some(&stored),
                &Request::BlindSavanna,
                &id(11 + BLIND_AHEAD_SLOTS, 2),
                101,
                r
            ),
            Decision::Advance(_)
        ));
        // A header dated far in the future, even for a key that never signed.
        let far = Request::Block {
            block_num: 5,
            slot: 100 + MAX_AHEAD_SLOTS + 1,
        };
        assert!(matches!(
            decide(None, &far, &d(1), 100, r),
            Decision::Refuse(_)
        ));
        assert!(matches!(
            decide(
                Some(&stored),
                &Request::Block {
                    block_num: u32::MAX,
                    slot: 50
                },
                &d(3),
                100,
                r
            ),
            Decision::Refuse(_)
        ));
    }

    #[test]
    fn blind_legacy_is_one_digest_per_wall_slot() {
        let stored = wm(10, 20, d(1), true);
        let r = RetryPolicy::Refuse;
        assert!(matches!(
            decide(Some(&stored), &Request::BlindLegacy, &d(2), 100, r),
            Decision::Refuse(_)
        ));
        assert!(matches!(
            decide(Some(&stored), &Request::BlindLegacy, &d(1), 100, r),
            Decision::Replay(_)
        ));
        assert!(matches!(
            decide(Some(&stored), &Request::BlindLegacy, &d(2), 101, r),
            Decision::Advance(_)
        ));
        assert!(
            matches!(
                decide(Some(&stored), &Request::BlindLegacy, &d(2), 99, r),
                Decision::Refuse(_)
            ),
            "clock went back"
        );
    }

    #[test]
    fn reserved_but_uncommitted_identical_request_proceeds() {
        let stored = wm(10, 20, d(1), false);
        assert!(matches!(
            decide(
                Some(&stored),
                &Request::Block {
                    block_num: 10,
                    slot: 20
                },
                &d(1),
                100,
                RetryPolicy::Refuse
            ),
            Decision::Advance(_)
        ));
        assert!(matches!(
            decide(
                Some(&stored),
                &Request::Block {
                    block_num: 10,
                    slot: 20
                },
                &d(2),
                100,
                RetryPolicy::Refuse
            ),
            Decision::Refuse(_)
        ));
    }

    proptest! {
        /// Whatever sequence of requests arrives — content-aware, blind Savanna and blind legacy,
        /// with the wall clock moving on (or not) — the watermark never lets two different digests
        /// through at one block number, nor two legacy digests in one wall-clock slot.
        #[test]
        fn never_two_digests_at_one_height(reqs in prop::collection::vec((0u32..20, 0u32..20, 0u8..3, 0u8..3, 0u32..2), 1..80)) {
            let mut stored: Option<Watermark> = None;
            let mut signed: std::collections::HashMap<u32, Checksum256> = Default::default();
            let mut legacy: std::collections::HashMap<u32, Checksum256> = Default::default();
            let mut wall = 100;
            for (n, s, b, kind, tick) in reqs {
                wall += tick;
                let (req, digest) = match kind {
                    0 => (Request::Block { block_num: n, slot: s }, d(b)),
                    1 => (Request::BlindSavanna, id(n, b)),
                    _ => (Request::BlindLegacy, d(100 + b)),
                };
                match decide(stored.as_ref(), &req, &digest, wall, RetryPolicy::Refuse) {
                    Decision::Advance(mut w) => {
                        if matches!(req, Request::BlindLegacy) {
                            if let Some(prev) = legacy.insert(wall, digest) {
                                prop_assert_eq!(prev, digest, "two legacy digests in wall slot {}", wall);
                            }
                        } else if let Some(prev) = signed.insert(w.block_num, digest) {
                            prop_assert_eq!(prev, digest, "two digests at height {}", w.block_num);
                        }
                        w.signature = Some(sig());
                        stored = Some(w);
                    }
                    Decision::Replay(_) => prop_assert_eq!(stored.map(|w| w.digest), Some(digest)),
                    Decision::Refuse(_) => {}
                }
            }
        }
    }
}

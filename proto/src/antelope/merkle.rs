//! The two merkle roots Antelope puts in block headers.
//!
//! Guards: byte-exact roots. A header's `transaction_mroot` is checked by every validating node;
//! a root computed the wrong way makes a block the chain rejects.
//!
//! - [`merkle`] is Spring's `calculate_merkle` (Savanna blocks): no leaf is duplicated; an empty
//!   list gives 32 zero bytes, one leaf is its own root, and a list of `n > 1` leaves splits into a
//!   left part of `bit_floor(n)` leaves (a perfect tree, or when `n` is a power of two, halves) and
//!   the rest, combined as `sha256(left ‖ right)`.
//! - [`legacy_merkle`] is `calculate_merkle_legacy` (EOSIO/Leap and legacy Spring blocks): level
//!   by level, an odd level duplicates its last node, and before hashing a pair the left digest's
//!   first byte gets its top bit cleared and the right one's set, so a proof need not say which
//!   side a node is on.

use super::Checksum256;

/// `sha256(a ‖ b)`.
fn combine(a: &Checksum256, b: &Checksum256) -> Checksum256 {
    Checksum256::hash_parts(&[&a.0, &b.0])
}

/// Spring's `calculate_merkle` (Savanna).
pub fn merkle(leaves: &[Checksum256]) -> Checksum256 {
    match leaves {
        [] => Checksum256::default(),
        [one] => *one,
        _ => {
            // Largest power of two not above the length; the left part is a perfect tree. For
            // a power-of-two length that is the whole list, which splits into two halves.
            let mut left = 1usize << (usize::BITS - 1 - leaves.len().leading_zeros());
            if left == leaves.len() {
                left /= 2;
            }
            combine(&merkle(&leaves[..left]), &merkle(&leaves[left..]))
        }
    }
}

/// The left node of a legacy pair: top bit of the first byte cleared.
pub fn legacy_left(d: &Checksum256) -> Checksum256 {
    let mut out = *d;
    out.0[0] &= 0x7f;
    out
}

/// The right node of a legacy pair: top bit of the first byte set.
pub fn legacy_right(d: &Checksum256) -> Checksum256 {
    let mut out = *d;
    out.0[0] |= 0x80;
    out
}

/// `calculate_merkle_legacy` (EOSIO/Leap).
pub fn legacy_merkle(leaves: &[Checksum256]) -> Checksum256 {
    if leaves.is_empty() {
        return Checksum256::default();
    }
    let mut level = leaves.to_vec();
    while level.len() > 1 {
        if level.len() % 2 == 1
            && let Some(last) = level.last().copied()
        {
            level.push(last);
        }
        level = level
            .chunks_exact(2)
            .map(|p| combine(&legacy_left(&p[0]), &legacy_right(&p[1])))
            .collect();
    }
    level[0]
}

/// [`legacy_merkle`] kept up to date one leaf at a time in O(log n) time and space, as Leap's
/// `incremental_merkle` keeps the blockroot merkle: only the fully built nodes still needed
/// ("active nodes") are stored; a partial node implies its missing right half equals its left.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LegacyIncrementalMerkle {
    count: u64,
    active: Vec<Checksum256>,
}

impl LegacyIncrementalMerkle {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of leaves.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether there are no leaves.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The root (equal to `legacy_merkle` of every leaf appended so far).
    pub fn root(&self) -> Checksum256 {
        self.active.last().copied().unwrap_or_default()
    }

    /// Appends a leaf and returns the new root.
    pub fn append(&mut self, leaf: Checksum256) -> Checksum256 {
        let n = self.count + 1;
        // Depth of a tree over n leaves: log2 of n rounded up to a power of two, plus one.
        let max_depth = n.next_power_of_two().trailing_zeros() + 1;
        let mut index = self.count;
        let mut top = leaf;
        let mut partial = false;
        let mut active = self.active.iter();
        let mut updated = Vec::with_capacity(max_depth as usize);
        for _ in 1..max_depth {
            if index & 1 == 0 {
                // A left node with an implied right: keep it only while it is fully built.
                if !partial {
                    updated.push(top);
                }
                top = combine(&legacy_left(&top), &legacy_right(&top));
                partial = true;
            } else {
                // A right node under a built left one, which stays needed only if this node
                // is partial.
                let left = active.next().copied().unwrap_or_default();
                if partial {
                    updated.push(left);
                }
                top = combine(&legacy_left(&left), &legacy_right(&top));
            }
            index >>= 1;
        }
        updated.push(top);
        self.active = updated;
        self.count = n;
        top
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(i: u8) -> Checksum256 {
        Checksum256::hash(&[i])
    }

    #[test]
    fn small_trees_by_hand() {
        let (a, b, c) = (leaf(1), leaf(2), leaf(3));
        assert_eq!(merkle(&[]), Checksum256::default());
        assert_eq!(merkle(&[a]), a);
        assert_eq!(merkle(&[a, b]), combine(&a, &b));
        // Three leaves: a perfect pair on the left, the third alone (not duplicated) on the right.
        assert_eq!(merkle(&[a, b, c]), combine(&combine(&a, &b), &c));

        assert_eq!(legacy_merkle(&[]), Checksum256::default());
        assert_eq!(legacy_merkle(&[a]), a);
        let ab = combine(&legacy_left(&a), &legacy_right(&b));
        let cc = combine(&legacy_left(&c), &legacy_right(&c));
        assert_eq!(
            legacy_merkle(&[a, b, c]),
            combine(&legacy_left(&ab), &legacy_right(&cc))
        );
    }

    /// Reference for Savanna: level by level, an unpaired last node moves up unchanged.
    fn reference_savanna(leaves: &[Checksum256]) -> Checksum256 {
        let mut level: Vec<[u8; 32]> = leaves.iter().map(|l| l.0).collect();
        if level.is_empty() {
            return Checksum256::default();
        }
        while level.len() > 1 {
            let mut next = Vec::new();
            for pair in level.chunks(2) {
                next.push(if pair.len() == 2 {
                    Checksum256::hash(&[pair[0], pair[1]].concat()).0
                } else {
                    pair[0]
                });
            }
            level = next;
        }
        Checksum256(level[0])
    }

    /// Reference for legacy: level by level, the odd last node paired with itself, side bits.
    fn reference_legacy(leaves: &[Checksum256]) -> Checksum256 {
        let mut level: Vec<[u8; 32]> = leaves.iter().map(|l| l.0).collect();
        if level.is_empty() {
            return Checksum256::default();
        }
        while level.len() > 1 {
            let mut next = Vec::new();
            for i in (0..level.len()).step_by(2) {
                let mut l = level[i];
                let mut r = *level.get(i + 1).unwrap_or(&level[i]);
                l[0] &= 0b0111_1111;
                r[0] |= 0b1000_0000;
                next.push(Checksum256::hash(&[l, r].concat()).0);
            }
            level = next;
        }
        Checksum256(level[0])
    }

    #[test]
    fn sizes_zero_to_nine_match_the_references() {
        for n in 0..=9u8 {
            let leaves: Vec<Checksum256> = (0..n).map(leaf).collect();
            assert_eq!(
                merkle(&leaves),
                reference_savanna(&leaves),
                "savanna, {n} leaves"
            );
            assert_eq!(
                legacy_merkle(&leaves),
                reference_legacy(&leaves),
                "legacy, {n} leaves"
            );
        }
        // The side bits make the two differ (a left leaf with its top bit set).
        let two = [Checksum256([0xff; 32]), Checksum256([0; 32])];
        assert_ne!(merkle(&two), legacy_merkle(&two));
    }

    #[test]
    fn canonical_bits_touch_only_the_top_bit_of_byte_zero() {
        let d = Checksum256([0xff; 32]);
        assert_eq!(legacy_left(&d).0[0], 0x7f);
        assert_eq!(legacy_left(&d).0[1..], d.0[1..]);
        let z = Checksum256::default();
        assert_eq!(legacy_right(&z).0[0], 0x80);
        assert_eq!(legacy_right(&z).0[1..], z.0[1..]);
    }

    #[test]
    fn the_incremental_legacy_merkle_matches_the_whole_computation() {
        let leaves: Vec<Checksum256> = (0..300u32)
            .map(|i| Checksum256::hash(&i.to_le_bytes()))
            .collect();
        let mut inc = LegacyIncrementalMerkle::new();
        assert_eq!(inc.root(), Checksum256::default());
        for n in 1..=leaves.len() {
            let root = inc.append(leaves[n - 1]);
            assert_eq!(root, legacy_merkle(&leaves[..n]), "{n} leaves");
            assert_eq!(inc.root(), root);
            // O(log n) nodes kept.
            assert!(inc.active.len() <= 64 - (n as u64).leading_zeros() as usize + 1);
        }
    }
}

//! Following a key rotation's hand-over: which key the producer signs with once the signer has
//! retired the one it was using (pure; the caller asks the signer for its key list).
//!
//! Guards: the producer moves only to a key the signer itself lists as active on this chain and
//! as a successor of the key it used (its `predecessors`), never to an arbitrary key, and never
//! back to a key it left; when the answer is not unique it stays put and says why.

use oryx_proto::antelope::{Checksum256, PublicKey};
use oryx_proto::grpc::KeyInfo;

/// What the signer's key list says about the key the producer signs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handover {
    /// The key is listed as active on the chain: keep it.
    Keep,
    /// The key is gone and `to` is its nearest active successor on the chain.
    To(PublicKey),
    /// The key is gone and no single successor is listed: why.
    Unresolved(String),
}

/// Where `current` stands in the signer's active `keys` for `chain`.
pub fn follow(current: &PublicKey, chain: &Checksum256, keys: &[KeyInfo]) -> Handover {
    let on_chain = keys
        .iter()
        .filter(|k| k.chain_ids.iter().any(|c| c[..] == chain.0[..]));
    let parse = |s: &str| PublicKey::parse(s).ok();
    let mut nearest: Option<(usize, PublicKey)> = None;
    let mut tied = false;
    for k in on_chain {
        let Some(key) = parse(&k.public_key) else {
            continue;
        };
        if key == *current {
            return Handover::Keep;
        }
        let Some(distance) = k
            .predecessors
            .iter()
            .position(|p| parse(p).as_ref() == Some(current))
        else {
            continue;
        };
        match nearest {
            Some((d, _)) if d < distance => {}
            Some((d, _)) if d == distance => tied = true,
            _ => {
                nearest = Some((distance, key));
                tied = false;
            }
        }
    }
    match nearest {
        Some((_, to)) if !tied => Handover::To(to),
        Some(_) => Handover::Unresolved(format!(
            "the signer lists more than one active successor of {current} on this chain"
        )),
        None => Handover::Unresolved(format!(
            "the signer lists neither {current} nor a successor of it as active on this chain"
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const CHAIN: Checksum256 = Checksum256([7; 32]);

    fn key(n: u8) -> PublicKey {
        let mut sk = [0u8; 32];
        sk[31] = n;
        oryx_proto::antelope::PrivateKey::from_bytes(oryx_proto::antelope::KeyType::K1, sk)
            .unwrap()
            .public_key()
    }

    fn info(k: PublicKey, preds: &[PublicKey], chain: Checksum256) -> KeyInfo {
        KeyInfo {
            public_key: k.to_string(),
            chain_ids: vec![chain.0.to_vec()],
            predecessors: preds.iter().map(ToString::to_string).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn a_listed_key_is_kept_and_a_retired_one_goes_to_its_nearest_successor() {
        let (a, b, c) = (key(1), key(2), key(3));
        // Before the hand-over both are listed: keep the old one.
        let both = [info(b, &[a], CHAIN), info(a, &[], CHAIN)];
        assert_eq!(follow(&a, &CHAIN, &both), Handover::Keep);
        // a retired, b handed a successor c already: b is the hand-over target, not c.
        let later = [info(c, &[b, a], CHAIN), info(b, &[a], CHAIN)];
        assert_eq!(follow(&a, &CHAIN, &later), Handover::To(b));
        // Both a and b retired: c.
        assert_eq!(
            follow(&a, &CHAIN, &[info(c, &[b, a], CHAIN)]),
            Handover::To(c)
        );
    }

    #[test]
    fn no_move_to_another_chain_an_unrelated_key_or_an_ambiguous_pair() {
        let (a, b, c) = (key(1), key(2), key(3));
        let other = Checksum256([8; 32]);
        let why = |h: Handover| match h {
            Handover::Unresolved(w) => w,
            h => panic!("{h:?}"),
        };
        assert!(why(follow(&a, &CHAIN, &[info(b, &[a], other)])).contains("neither"));
        assert!(why(follow(&a, &CHAIN, &[info(b, &[], CHAIN)])).contains("neither"));
        let two = [info(b, &[a], CHAIN), info(c, &[a], CHAIN)];
        assert!(why(follow(&a, &CHAIN, &two)).contains("more than one"));
        assert!(why(follow(&a, &CHAIN, &[])).contains("neither"));
    }
}

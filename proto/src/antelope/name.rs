//! Account, action and permission names (`eosio::chain::name`).
//!
//! Guards: a string is accepted only if nodeos accepts it — at most 13 characters from
//! `.12345a-z`, a 13th character that fits in 4 bits, and normalised (no trailing dots), so the
//! name an approver reads is the name the chain executes.

use std::fmt;
use std::str::FromStr;

use super::codec::{Pack, Reader, Unpack};
use crate::{Error, Result};

/// A 64-bit Antelope name.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name(pub u64);

const ALPHABET: &[u8; 32] = b".12345abcdefghijklmnopqrstuvwxyz";

fn symbol(c: u8) -> Option<u64> {
    match c {
        b'a'..=b'z' => Some(u64::from(c - b'a') + 6),
        b'1'..=b'5' => Some(u64::from(c - b'1') + 1),
        b'.' => Some(0),
        _ => None,
    }
}

impl Name {
    /// Parses a name as `name::set` does, rejecting anything that does not round-trip.
    pub fn new(s: &str) -> Result<Self> {
        let err = |reason| Error::Name {
            name: s.to_string(),
            reason,
        };
        if s.len() > 13 {
            return Err(err("longer than 13 characters"));
        }
        let mut value = 0u64;
        for (i, c) in s.bytes().enumerate() {
            let v = symbol(c).ok_or_else(|| err("characters must be . 1-5 a-z"))?;
            if i < 12 {
                value |= v << (64 - 5 * (i + 1));
            } else if v > 0x0f {
                return Err(err("the 13th character must be . 1-5 a-j"));
            } else {
                value |= v;
            }
        }
        let name = Name(value);
        if name.to_string() != s {
            return Err(err("not normalised (trailing dots are not allowed)"));
        }
        Ok(name)
    }

    /// The raw 64-bit value.
    pub fn value(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut chars = [b'.'; 13];
        let mut tmp = self.0;
        for i in 0..13 {
            let (mask, shift) = if i == 0 { (0x0f, 4) } else { (0x1f, 5) };
            chars[12 - i] = ALPHABET[(tmp & mask) as usize];
            tmp >>= shift;
        }
        let len = chars.iter().rposition(|&c| c != b'.').map_or(0, |p| p + 1);
        // Every byte comes from ALPHABET, which is ASCII.
        f.write_str(std::str::from_utf8(&chars[..len]).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Name({self})")
    }
}

impl FromStr for Name {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Name::new(s)
    }
}

impl Pack for Name {
    fn pack(&self, out: &mut Vec<u8>) {
        self.0.pack(out);
    }
}

impl Unpack for Name {
    const WHAT: &'static str = "name";
    const MIN_SIZE: usize = 8;
    fn unpack(r: &mut Reader<'_>) -> Result<Self> {
        r.u64("name").map(Name)
    }
}

super::codec::serde_as_string!(Name);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_names() {
        assert_eq!(Name::new("eosio").map(Name::value), Ok(6138663577826885632));
        assert_eq!(Name::new("").map(Name::value), Ok(0));
        assert_eq!(Name(u64::MAX).to_string(), "zzzzzzzzzzzzj");
        assert_eq!(Name::new("zzzzzzzzzzzzj"), Ok(Name(u64::MAX)));
    }

    #[test]
    fn rejects_what_nodeos_rejects() {
        for bad in [
            "eosio.",
            "abcdefghijklm",
            "EOSIO",
            "abcdefghijklmn",
            "a b",
            "6",
            "é",
        ] {
            assert!(Name::new(bad).is_err(), "{bad} should be rejected");
        }
    }

    proptest! {
        #[test]
        fn every_value_round_trips(v: u64) {
            let s = Name(v).to_string();
            prop_assert_eq!(Name::new(&s)?, Name(v));
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,20}") {
            let _ = Name::new(&s);
        }
    }
}

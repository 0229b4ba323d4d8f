//! Symbols and assets (`eosio::chain::symbol`, `asset`).
//!
//! Guards: an amount is shown with exactly its symbol's precision, and a string is accepted only
//! if it has exactly that many decimals — "1.0 EOS" and "1.0000 EOS" are different assets, and
//! an approver must see the one the chain moves.

use std::fmt;
use std::str::FromStr;

use super::codec::{Pack, Reader, Unpack};
use crate::{Error, Result};

/// Largest absolute amount `eosio::chain::asset` accepts: 2^62 - 1.
pub const MAX_AMOUNT: i64 = (1 << 62) - 1;
/// Largest precision a symbol can have.
pub const MAX_PRECISION: u8 = 18;

/// A token symbol: precision in the low byte, up to 7 upper-case letters above it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Symbol(u64);

impl Symbol {
    /// Builds a symbol from a precision and a code such as `EOS`.
    pub fn new(precision: u8, code: &str) -> Result<Self> {
        let err = |reason| Error::Asset {
            text: format!("{precision},{code}"),
            reason,
        };
        if precision > MAX_PRECISION {
            return Err(err("precision above 18"));
        }
        if code.is_empty() || code.len() > 7 || !code.bytes().all(|c| c.is_ascii_uppercase()) {
            return Err(err("symbol code must be 1 to 7 letters A-Z"));
        }
        let mut v = 0u64;
        for (i, c) in code.bytes().enumerate() {
            v |= u64::from(c) << (8 * (i + 1));
        }
        Ok(Symbol(v | u64::from(precision)))
    }

    /// Validates a raw value as read from the chain.
    pub fn from_raw(v: u64) -> Result<Self> {
        let s = Symbol(v);
        let code = s.code_raw();
        let err = |reason| Error::Asset {
            text: format!("symbol 0x{v:016x}"),
            reason,
        };
        if s.precision() > MAX_PRECISION {
            return Err(err("precision above 18"));
        }
        // Letters must be contiguous from the low end, then zero bytes.
        let bytes = code.to_le_bytes();
        let len = bytes.iter().position(|&b| b == 0).unwrap_or(8);
        if len == 0
            || len > 7
            || !bytes[..len].iter().all(u8::is_ascii_uppercase)
            || bytes[len..].iter().any(|&b| b != 0)
        {
            return Err(err("symbol code must be 1 to 7 letters A-Z"));
        }
        Ok(s)
    }

    fn code_raw(self) -> u64 {
        self.0 >> 8
    }

    /// Number of decimals.
    pub fn precision(self) -> u8 {
        (self.0 & 0xff) as u8
    }

    /// The code, e.g. `EOS`.
    pub fn code(self) -> String {
        self.code_raw()
            .to_le_bytes()
            .iter()
            .take_while(|&&b| b != 0)
            .map(|&b| char::from(b))
            .collect()
    }

    /// The raw 64-bit value.
    pub fn value(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{},{}", self.precision(), self.code())
    }
}

impl fmt::Debug for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Symbol({self})")
    }
}

impl FromStr for Symbol {
    type Err = Error;
    /// Parses `4,EOS`.
    fn from_str(s: &str) -> Result<Self> {
        let (p, code) = s.split_once(',').ok_or_else(|| Error::Asset {
            text: s.into(),
            reason: "expected PRECISION,CODE",
        })?;
        let precision = p.parse::<u8>().map_err(|_| Error::Asset {
            text: s.into(),
            reason: "bad precision",
        })?;
        Symbol::new(precision, code)
    }
}

impl Pack for Symbol {
    fn pack(&self, out: &mut Vec<u8>) {
        self.0.pack(out);
    }
}

impl Unpack for Symbol {
    const WHAT: &'static str = "symbol";
    const MIN_SIZE: usize = 8;
    fn unpack(r: &mut Reader<'_>) -> Result<Self> {
        Symbol::from_raw(r.u64("symbol")?)
    }
}

/// An amount of a token.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Asset {
    /// Amount in the smallest unit (10^-precision).
    pub amount: i64,
    /// The token.
    pub symbol: Symbol,
}

impl Asset {
    /// Builds an asset, refusing amounts beyond ±(2^62 - 1).
    pub fn new(amount: i64, symbol: Symbol) -> Result<Self> {
        if !(-MAX_AMOUNT..=MAX_AMOUNT).contains(&amount) {
            return Err(Error::Asset {
                text: format!("{amount} {symbol}"),
                reason: "amount out of range",
            });
        }
        Ok(Asset { amount, symbol })
    }
}

impl fmt::Display for Asset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = u32::from(self.symbol.precision());
        let sign = if self.amount < 0 { "-" } else { "" };
        let abs = self.amount.unsigned_abs();
        if p == 0 {
            write!(f, "{sign}{abs} {}", self.symbol.code())
        } else {
            let scale = 10u64.pow(p);
            write!(
                f,
                "{sign}{}.{:0width$} {}",
                abs / scale,
                abs % scale,
                self.symbol.code(),
                width = p as usize
            )
        }
    }
}

impl fmt::Debug for Asset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Asset({self})")
    }
}

impl FromStr for Asset {
    type Err = Error;
    /// Parses `1.0000 EOS`: the number of decimals sets the precision.
    fn from_str(s: &str) -> Result<Self> {
        let err = |reason| Error::Asset {
            text: s.to_string(),
            reason,
        };
        let (num, code) = s
            .split_once(' ')
            .ok_or_else(|| err("expected AMOUNT SYMBOL"))?;
        let (neg, digits) = match num.strip_prefix('-') {
            Some(d) => (true, d),
            None => (false, num),
        };
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
        if int.is_empty()
            || !int.bytes().all(|c| c.is_ascii_digit())
            || !frac.bytes().all(|c| c.is_ascii_digit())
        {
            return Err(err("amount must be digits with an optional decimal part"));
        }
        if digits.contains('.') && frac.is_empty() {
            return Err(err("a decimal point needs decimals"));
        }
        let precision = u8::try_from(frac.len())
            .ok()
            .filter(|p| *p <= MAX_PRECISION)
            .ok_or_else(|| err("precision above 18"))?;
        let symbol = Symbol::new(precision, code)
            .map_err(|_| err("symbol code must be 1 to 7 letters A-Z"))?;
        let joined = format!("{int}{frac}");
        let magnitude = joined
            .parse::<i64>()
            .map_err(|_| err("amount out of range"))?;
        let amount = if neg { -magnitude } else { magnitude };
        Asset::new(amount, symbol).map_err(|_| err("amount out of range"))
    }
}

impl Pack for Asset {
    fn pack(&self, out: &mut Vec<u8>) {
        self.amount.pack(out);
        self.symbol.pack(out);
    }
}

impl Unpack for Asset {
    const WHAT: &'static str = "asset";
    const MIN_SIZE: usize = 16;
    fn unpack(r: &mut Reader<'_>) -> Result<Self> {
        let amount = r.i64("asset amount")?;
        let symbol = Symbol::unpack(r)?;
        Asset::new(amount, symbol)
    }
}

super::codec::serde_as_string!(Symbol, Asset);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_assets() {
        let a: Asset = "1.0000 EOS".parse().expect("valid");
        assert_eq!(a.amount, 10000);
        assert_eq!(a.symbol.precision(), 4);
        assert_eq!(hex::encode(a.packed()), "102700000000000004454f5300000000");
        assert_eq!(
            "-0.0001 WAX".parse::<Asset>().map(|a| a.to_string()),
            Ok("-0.0001 WAX".into())
        );
        assert_eq!(
            "5 NFT".parse::<Asset>().map(|a| a.to_string()),
            Ok("5 NFT".into())
        );
    }

    #[test]
    fn rejects_bad_assets() {
        for bad in [
            "1.0000",
            "1. EOS",
            ".5 EOS",
            "1.0000 eos",
            "1.0000 TOOLONGX",
            "1,0 EOS",
            "4611686018427387904 EOS",
            "1.0000  EOS",
        ] {
            assert!(bad.parse::<Asset>().is_err(), "{bad}");
        }
        assert!(
            Symbol::from_raw(0x00_00_00_00_53_00_45_04).is_err(),
            "gap in the code"
        );
    }

    proptest! {
        #[test]
        fn round_trips(amount in -MAX_AMOUNT..=MAX_AMOUNT, precision in 0u8..=18, code in "[A-Z]{1,7}") {
            let a = Asset::new(amount, Symbol::new(precision, &code)?)?;
            prop_assert_eq!(a.to_string().parse::<Asset>()?, a);
            prop_assert_eq!(Asset::unpack_exact(&a.packed())?, a);
        }
    }
}

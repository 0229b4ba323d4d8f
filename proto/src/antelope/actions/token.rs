//! `eosio.token` actions.
//!
//! Guards: a transfer is shown with the exact amount, precision and memo the chain will execute.

use crate::antelope::asset::Asset;
use crate::antelope::name::Name;

/// `eosio.token::transfer`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transfer {
    /// The sender, whose authority the action needs.
    pub from: Name,
    /// The recipient.
    pub to: Name,
    /// The amount and token.
    pub quantity: Asset,
    /// Free text (the contract limits it to 256 bytes).
    pub memo: String,
}

action_codec!(Transfer, "transfer" { from, to, quantity, memo });

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use crate::antelope::codec::{Pack, Unpack};
    use proptest::prelude::*;
    use serde_json::json;

    fn n(s: &str) -> Name {
        Name::new(s).expect("valid name")
    }

    fn alice_to_bob() -> Transfer {
        Transfer {
            from: n("alice"),
            to: n("bob"),
            quantity: "1.0000 EOS".parse().expect("asset"),
            memo: "hi".into(),
        }
    }

    /// alice (LE) ‖ bob (LE) ‖ 10000 as i64 LE ‖ symbol 4,EOS as u64 LE ‖ varuint 2 ‖ "hi".
    const ALICE_TO_BOB_HEX: &str =
        "0000000000855c340000000000000e3d102700000000000004454f5300000000026869";

    #[test]
    fn known_encoding() {
        assert_eq!(hex::encode(alice_to_bob().packed()), ALICE_TO_BOB_HEX);
        let bytes = hex::decode(ALICE_TO_BOB_HEX).expect("hex");
        assert_eq!(Transfer::unpack_exact(&bytes), Ok(alice_to_bob()));
    }

    #[test]
    fn json_round_trip() {
        let v = serde_json::to_value(alice_to_bob()).expect("serializes");
        assert_eq!(
            v,
            json!({"from": "alice", "to": "bob", "quantity": "1.0000 EOS", "memo": "hi"})
        );
        assert_eq!(
            serde_json::from_value::<Transfer>(v).expect("parses"),
            alice_to_bob()
        );
        for bad in [
            json!({"from": "alice", "to": "bob", "quantity": "1.0000 EOS"}),
            json!({"from": "alice", "to": "bob", "quantity": "1 EOS 2", "memo": ""}),
            json!({"from": "Alice", "to": "bob", "quantity": "1.0000 EOS", "memo": ""}),
            json!({"from": "alice", "to": "bob", "quantity": "1.0000 EOS", "memo": "", "extra": 1}),
        ] {
            assert!(
                serde_json::from_value::<Transfer>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn malformed_is_an_error() {
        let bytes = hex::decode(ALICE_TO_BOB_HEX).expect("hex");
        for len in 0..bytes.len() {
            assert!(
                Transfer::unpack_exact(&bytes[..len]).is_err(),
                "truncated to {len}"
            );
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(
            Transfer::unpack_exact(&trailing),
            Err(Error::TrailingBytes { .. })
        ));
        let mut bad_utf8 = bytes.clone();
        let last = bad_utf8.len() - 1;
        bad_utf8[last] = 0xff;
        assert!(Transfer::unpack_exact(&bad_utf8).is_err());
        let mut bad_symbol = bytes;
        bad_symbol[25] = b'e';
        assert!(Transfer::unpack_exact(&bad_symbol).is_err());
    }

    proptest! {
        #[test]
        fn round_trips(from: u64, to: u64, amount in -crate::antelope::asset::MAX_AMOUNT..=crate::antelope::asset::MAX_AMOUNT,
                       precision in 0u8..=18, code in "[A-Z]{1,7}", memo in "\\PC{0,40}") {
            let quantity = Asset::new(amount, crate::antelope::asset::Symbol::new(precision, &code)?)?;
            let t = Transfer { from: Name(from), to: Name(to), quantity, memo };
            prop_assert_eq!(Transfer::unpack_exact(&t.packed())?, t.clone());
            let v = serde_json::to_value(&t).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(serde_json::from_value::<Transfer>(v).map_err(|e| TestCaseError::fail(e.to_string()))?, t);
        }
    }
}

//! Builders shared by the integration tests: real keys, real system action data, real
//! transactions.
#![allow(dead_code, clippy::unwrap_used, unreachable_pub)]

use oryx_policy::{Body, Request};
use oryx_proto::antelope::actions::{
    Authority, ClaimRewards, LinkAuth, RegProducer, UpdateAuth, VoteProducer,
};
use oryx_proto::antelope::chain::parse_chain_id;
use oryx_proto::antelope::transaction::{Action, Extension, Transaction};
use oryx_proto::antelope::{
    Bytes, Checksum256, KeyType, Name, PrivateKey, PublicKey, SystemAction, TimePointSec,
};

/// A fixed clock reading.
pub const NOW: u32 = 1_750_000_000;

/// A real K1 key, distinct per `i` (i ≥ 1).
pub fn key(i: u8) -> PublicKey {
    PrivateKey::from_bytes(KeyType::K1, [i; 32])
        .unwrap()
        .public_key()
}

pub fn n(s: &str) -> Name {
    Name::new(s).unwrap()
}

pub fn chain(name: &str) -> Checksum256 {
    parse_chain_id(name).unwrap()
}

pub fn action(account: &str, name: &str, auth: &[&str], data: Vec<u8>) -> Action {
    Action {
        account: n(account),
        name: n(name),
        authorization: auth.iter().map(|a| a.parse().unwrap()).collect(),
        data: Bytes(data),
    }
}

fn system(auth: &[&str], a: &SystemAction) -> Action {
    Action {
        account: a.account(),
        name: a.name(),
        authorization: auth.iter().map(|a| a.parse().unwrap()).collect(),
        data: Bytes(a.pack_data()),
    }
}

pub fn transfer(auth: &[&str], from: &str, to: &str, quantity: &str) -> Action {
    system(
        auth,
        &SystemAction::Transfer(oryx_proto::antelope::actions::Transfer {
            from: n(from),
            to: n(to),
            quantity: quantity.parse().unwrap(),
            memo: "test".into(),
        }),
    )
}

pub fn updateauth(auth: &[&str], account: &str, permission: &str, parent: &str) -> Action {
    system(
        auth,
        &SystemAction::UpdateAuth(UpdateAuth {
            account: n(account),
            permission: n(permission),
            parent: n(parent),
            auth: Authority::single_key(key(9)),
            authorized_by: None,
        }),
    )
}

pub fn linkauth(auth: &[&str], account: &str) -> Action {
    system(
        auth,
        &SystemAction::LinkAuth(LinkAuth {
            account: n(account),
            code: n("eosio"),
            type_: n("claimrewards"),
            requirement: n("claimer"),
            authorized_by: None,
        }),
    )
}

pub fn regproducer(auth: &[&str], producer: &str, producer_key: PublicKey) -> Action {
    system(
        auth,
        &SystemAction::RegProducer(RegProducer {
            producer: n(producer),
            producer_key,
            url: "https://producer1.example".into(),
            location: 840,
        }),
    )
}

pub fn claimrewards(auth: &[&str], owner: &str) -> Action {
    system(
        auth,
        &SystemAction::ClaimRewards(ClaimRewards { owner: n(owner) }),
    )
}

pub fn voteproducer(auth: &[&str], voter: &str, producers: &[&str]) -> Action {
    system(
        auth,
        &SystemAction::VoteProducer(VoteProducer {
            voter: n(voter),
            proxy: Name(0),
            producers: producers.iter().map(|p| n(p)).collect(),
        }),
    )
}

/// A transaction expiring `NOW + 60` with these actions.
pub fn trx(actions: Vec<Action>) -> Transaction {
    Transaction {
        expiration: TimePointSec(NOW + 60),
        ref_block_num: 1,
        ref_block_prefix: 2,
        max_net_usage_words: Default::default(),
        max_cpu_usage_ms: 0,
        delay_sec: Default::default(),
        context_free_actions: vec![],
        actions,
        transaction_extensions: vec![],
    }
}

pub fn with_extension(mut t: Transaction) -> Transaction {
    t.transaction_extensions.push(Extension(1, Bytes(vec![0])));
    t
}

pub fn request(principal: &str, key: PublicKey, chain_id: &str, body: Body) -> Request {
    Request {
        principal: principal.into(),
        key,
        chain_id: chain(chain_id),
        now: TimePointSec(NOW),
        body,
    }
}

pub fn tx(t: Transaction) -> Body {
    Body::Transaction {
        trx: t,
        has_context_free_data: false,
        msig_proposals: vec![],
    }
}

pub fn block() -> Body {
    Body::Block {
        block_num: 100,
        producer: n("producer1"),
    }
}

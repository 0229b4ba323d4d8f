//! Every gRPC request after protobuf decoding, through the signer's own field decoders
//! (chain id, key, transaction in its three shapes, header, digest, approval signature): no
//! panic on any bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use oryx_proto::antelope::block::BlockHeader;
use oryx_proto::antelope::{PublicKey, Signature};
use oryx_proto::grpc;
use prost::Message as _;

fuzz_target!(|data: &[u8]| {
    let Some((first, rest)) = data.split_first() else {
        return;
    };
    let key = |s: &str| {
        let _ = PublicKey::parse(s.trim());
    };
    match first % 6 {
        0 => {
            if let Ok(r) = grpc::SignTransactionRequest::decode(rest) {
                key(&r.public_key);
                let _ = oryx_signer::server::transaction(r.transaction, r.context_free_data);
            }
        }
        1 => {
            if let Ok(r) = grpc::SignBlockRequest::decode(rest) {
                key(&r.public_key);
                if let Ok(h) = BlockHeader::decode(&r.header) {
                    let _ = h.signing_digest(None);
                }
            }
        }
        2 => {
            if let Ok(r) = grpc::SignDigestRequest::decode(rest) {
                key(&r.public_key);
            }
        }
        3 => {
            if let Ok(r) = grpc::ApproveRequest::decode(rest) {
                let _ = Signature::parse(&r.signature);
            }
        }
        4 => {
            if let Ok(r) = grpc::GenerateKeyRequest::decode(rest) {
                key(&r.successor_of);
            }
        }
        _ => {
            if let Ok(r) = grpc::RetireKeyRequest::decode(rest) {
                key(&r.public_key);
                key(&r.successor);
            }
        }
    }
});

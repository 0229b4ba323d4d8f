//! `oryx ceremony …` (every ceremony, `verify` and `show`): the ceremony transcript, one JSON
//! file per ceremony that records every step as a hash-chained entry, and the signer's audit-key
//! signatures over the chain's head.
//!
//! Format (`oryx-ceremony-transcript/1`):
//!
//! ```text
//! { "format", "ceremony" (random id), "kind", "params",
//!   "entries": [ { "seq", "time", "step", "data", "prev", "hash" }, … ],
//!   "signatures": [ { "seq", "head", "digest", "public_key", "signature", "audit" }, … ] }
//! ```
//!
//! - `hash` = sha256 of the canonical JSON of `{seq, time, step, data, prev}` (object keys sorted
//!   by their UTF-8 bytes at every level, no whitespace, serde_json's string escaping).
//! - `prev` = the previous entry's `hash`; 64 zeros for entry 0, which is always the `begin`
//!   step and repeats `format`, `ceremony`, `kind` and `params`, so they are chained too.
//! - a signature covers the head after entry `seq`: `digest` = sha256("oryx transcript v1\0" ‖
//!   ceremony ‖ 0x00 ‖ head), signed by the signer's audit key (SignTranscript).
//!
//! A signature's `audit` (the SignTranscript call's line in the signer's audit log) is a pointer
//! the signature cannot cover, since it exists only after signing: `verify --audit-log` checks
//! it, and every audit position the entries record, against the signer's log.
//!
//! Guards: [`verify`] refuses any change to any entry (content, order, a deleted or inserted
//! entry), a signature that does not recover to the audit key over the documented digest of the
//! head it names, and a file whose bytes are not exactly the layout Oryx writes, naming the entry
//! or line. Pure: no I/O (the caller reads the files).

use oryx_proto::antelope::{Checksum256, PublicKey, Signature};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::steps;
use crate::transcript_digest;

/// The format tag.
pub const FORMAT: &str = "oryx-ceremony-transcript/1";

/// `prev` of entry 0.
pub const ZERO_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A transcript as stored. Hashes and keys are kept as text so a damaged file still loads and
/// [`verify`] can say which entry is wrong.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transcript {
    /// [`FORMAT`].
    pub format: String,
    /// The ceremony id (32 random hex characters).
    pub ceremony: String,
    /// The ceremony kind (`rotate-producer`, `rotate-auth`, `msig-propose`, …).
    pub kind: String,
    /// The parameters the ceremony was started with (a copy of entry 0's).
    pub params: Value,
    /// The hash-chained steps.
    pub entries: Vec<Entry>,
    /// Audit-key signatures over the head, one per command run.
    #[serde(default)]
    pub signatures: Vec<HeadSignature>,
}

/// One step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Position, from 0.
    pub seq: u64,
    /// When it was recorded (UTC, seconds).
    pub time: String,
    /// The step's name (see [`steps`]).
    pub step: String,
    /// What the step recorded.
    pub data: Value,
    /// The previous entry's hash.
    pub prev: String,
    /// This entry's hash.
    pub hash: String,
}

/// Where a decision sits in the signer's audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditPos {
    /// Line number.
    pub seq: u64,
    /// Line hash (64 hex).
    pub hash: String,
}

/// The audit key's signature over the head after entry `seq`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadSignature {
    /// The last entry covered.
    pub seq: u64,
    /// Its hash.
    pub head: String,
    /// [`transcript_digest`] of the ceremony and head: what was signed.
    pub digest: String,
    /// The audit key.
    pub public_key: String,
    /// The signature.
    pub signature: String,
    /// The SignTranscript call's audit entry.
    #[serde(default)]
    pub audit: Option<AuditPos>,
}

/// JSON with object keys sorted (by UTF-8 bytes) at every level and no whitespace.
pub fn canonical_json(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                if let Some(item) = map.get(*k) {
                    write_canonical(item, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// The hash of an entry's content.
pub fn entry_hash(seq: u64, time: &str, step: &str, data: &Value, prev: &str) -> Checksum256 {
    let body = json!({"seq": seq, "time": time, "step": step, "data": data, "prev": prev});
    Checksum256::hash(canonical_json(&body).as_bytes())
}

impl Transcript {
    /// A new transcript whose entry 0 (`begin`) records the format, id, kind and parameters.
    pub fn begin(ceremony: &str, kind: &str, params: Value, time: String) -> Self {
        let mut t = Transcript {
            format: FORMAT.into(),
            ceremony: ceremony.into(),
            kind: kind.into(),
            params: params.clone(),
            entries: Vec::new(),
            signatures: Vec::new(),
        };
        t.append(
            steps::BEGIN,
            json!({"format": FORMAT, "ceremony": ceremony, "kind": kind, "params": params,
                   "tool": concat!("oryx ", env!("CARGO_PKG_VERSION"))}),
            time,
        );
        t
    }

    /// Appends a step, chained to the previous entry.
    pub fn append(&mut self, step: &str, data: Value, time: String) -> &Entry {
        let seq = self.entries.len() as u64;
        let prev = self
            .entries
            .last()
            .map_or_else(|| ZERO_HASH.to_string(), |e| e.hash.clone());
        let hash = entry_hash(seq, &time, step, &data, &prev).to_string();
        self.entries.push(Entry {
            seq,
            time,
            step: step.into(),
            data,
            prev,
            hash,
        });
        &self.entries[self.entries.len() - 1]
    }

    /// The last entry's hash.
    pub fn head(&self) -> Option<(u64, Checksum256)> {
        let e = self.entries.last()?;
        Checksum256::from_hex(&e.hash).ok().map(|h| (e.seq, h))
    }

    /// Whether the last signature covers the current head.
    pub fn head_signed(&self) -> bool {
        match (self.entries.last(), self.signatures.last()) {
            (Some(e), Some(s)) => s.seq == e.seq && s.head == e.hash,
            _ => false,
        }
    }

    /// The last entry of `step`, optionally only those whose `data.tx` is `tx`.
    pub fn last(&self, step: &str, tx: Option<&str>) -> Option<&Entry> {
        self.entries
            .iter()
            .rev()
            .find(|e| e.step == step && tx.is_none_or(|t| e.data.get("tx") == Some(&json!(t))))
    }

    /// The file's text: pretty JSON and a final newline (the exact layout [`verify`] expects).
    pub fn to_text(&self) -> String {
        // Serializing plain data (strings, numbers, JSON values) cannot fail.
        let body = serde_json::to_string_pretty(self).unwrap_or_default();
        format!("{body}\n")
    }

    /// Parses a transcript file.
    pub fn parse(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|e| {
            format!("not a ceremony transcript ({e}): the file is damaged or is something else")
        })
    }
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The ceremony id.
    pub ceremony: String,
    /// Its kind.
    pub kind: String,
    /// Number of entries.
    pub entries: usize,
    /// The audit key every signature recovers to (`None` when there is no signature).
    pub audit_key: Option<PublicKey>,
    /// Number of transcript signatures.
    pub signatures: usize,
    /// The last entry a signature covers.
    pub signed_through: Option<u64>,
    /// Facts worth telling the reader that are not failures.
    pub notes: Vec<String>,
}

/// Checks a transcript file: its chain, its signatures, the content of every step (digests
/// recomputed, signatures recovered; see [`steps::check`]), output files named by the steps
/// (`read_file` returns their bytes when they are beside the transcript), and that the bytes
/// are exactly what Oryx writes.
pub fn verify(
    text: &str,
    audit_key: Option<&PublicKey>,
    read_file: &dyn Fn(&str) -> Option<Vec<u8>>,
) -> Result<Report, String> {
    let t = Transcript::parse(text)?;
    if t.format != FORMAT {
        return Err(format!(
            "format {:?} is not {FORMAT:?}: this oryx cannot check it",
            t.format
        ));
    }
    check_chain(&t)?;
    let (key, signed_through) = check_signatures(&t, audit_key)?;
    let mut notes = steps::check(&t, read_file)?;
    let last = t.entries.last().map(|e| e.seq);
    if signed_through != last {
        let from = signed_through.map_or(0, |s| s + 1);
        return Err(format!(
            "entries {from}..={} are not covered by a transcript signature: the last command \
             did not finish (run its resume to sign), or entries were appended by hand",
            last.unwrap_or_default()
        ));
    }
    if let Some(line) = first_difference(text, &t.to_text()) {
        return Err(format!(
            "line {line} is not in the layout oryx writes (whitespace, escaping or key order \
             changed): the file was edited"
        ));
    }
    if key.is_none() {
        notes.push("no transcript signature".into());
    }
    Ok(Report {
        ceremony: t.ceremony.clone(),
        kind: t.kind.clone(),
        entries: t.entries.len(),
        audit_key: key,
        signatures: t.signatures.len(),
        signed_through,
        notes,
    })
}

/// The chain and the signatures' heads and digests, without the content checks: what a
/// ceremony command checks before it continues from a transcript.
pub fn verify_structure(t: &Transcript) -> Result<(), String> {
    if t.format != FORMAT {
        return Err(format!("format {:?} is not {FORMAT:?}", t.format));
    }
    check_chain(t)?;
    check_signatures(t, None).map(|_| ())
}

fn check_chain(t: &Transcript) -> Result<(), String> {
    let Some(first) = t.entries.first() else {
        return Err("the transcript has no entries".into());
    };
    let mut prev = ZERO_HASH.to_string();
    for (i, e) in t.entries.iter().enumerate() {
        let name = format!("entry {i} ({})", e.step);
        if e.seq != i as u64 {
            return Err(format!(
                "{name}: seq is {} but it is entry {i}: entries were deleted, inserted or \
                 reordered",
                e.seq
            ));
        }
        if e.prev != prev {
            return Err(format!(
                "{name}: prev does not match the hash of entry {}: entries were deleted, \
                 inserted, reordered or edited",
                i.saturating_sub(1)
            ));
        }
        let hash = entry_hash(e.seq, &e.time, &e.step, &e.data, &e.prev).to_string();
        if e.hash != hash {
            return Err(format!(
                "{name}: hash does not match its content: the entry was edited"
            ));
        }
        prev = e.hash.clone();
    }
    let begin = json!({"format": t.format, "ceremony": t.ceremony, "kind": t.kind,
                       "params": t.params});
    let matches = first.step == steps::BEGIN
        && ["format", "ceremony", "kind", "params"]
            .iter()
            .all(|k| first.data.get(k) == begin.get(k));
    if !matches {
        return Err(
            "entry 0 (begin): the header (format, ceremony, kind, params) differs from what \
             entry 0 records: the header was edited"
                .into(),
        );
    }
    Ok(())
}

fn check_signatures(
    t: &Transcript,
    audit_key: Option<&PublicKey>,
) -> Result<(Option<PublicKey>, Option<u64>), String> {
    let mut key: Option<PublicKey> = audit_key.copied();
    let mut through: Option<u64> = None;
    for (i, s) in t.signatures.iter().enumerate() {
        let name = format!("signature {i} (over entry {})", s.seq);
        let Some(entry) = usize::try_from(s.seq).ok().and_then(|n| t.entries.get(n)) else {
            return Err(format!("{name}: there is no entry {}", s.seq));
        };
        if s.head != entry.hash {
            return Err(format!(
                "{name}: head is not the hash of entry {}: the entry or the signature was edited",
                s.seq
            ));
        }
        if through.is_some_and(|p| s.seq < p) {
            return Err(format!("{name}: signatures are out of order"));
        }
        let head = Checksum256::from_hex(&s.head).map_err(|e| format!("{name}: head: {e}"))?;
        let digest = transcript_digest(&t.ceremony, &head);
        if s.digest != digest.to_string() {
            return Err(format!(
                "{name}: digest is not sha256(\"oryx transcript v1\\0\" || ceremony || 0x00 || \
                 head): the signature entry was edited"
            ));
        }
        if let Some(a) = &s.audit
            && !is_hash(&a.hash)
        {
            return Err(format!(
                "{name}: audit.hash is not 64 lowercase hex characters: it was edited"
            ));
        }
        let signer = PublicKey::parse(&s.public_key).map_err(|e| format!("{name}: {e}"))?;
        let sig = Signature::parse(&s.signature).map_err(|e| format!("{name}: {e}"))?;
        if !sig.recovers_to(&digest, &signer) {
            return Err(format!(
                "{name}: the signature does not recover to {signer} over the head digest"
            ));
        }
        match key {
            Some(k) if k != signer => {
                return Err(match audit_key {
                    Some(_) => format!("{name}: signed by {signer}, not the audit key {k}"),
                    None => format!(
                        "{name}: signed by {signer}, but earlier signatures by {k}: one \
                         transcript, one audit key"
                    ),
                });
            }
            _ => key = Some(signer),
        }
        through = Some(s.seq);
    }
    if t.signatures.is_empty() {
        key = None;
    }
    Ok((key, through))
}

/// Whether `s` is 64 lowercase hex characters.
fn is_hash(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The first line (1-based) where `a` and `b` differ.
fn first_difference(a: &str, b: &str) -> Option<usize> {
    if a == b {
        return None;
    }
    let mut la = a.split('\n');
    let mut lb = b.split('\n');
    let mut n = 1;
    loop {
        match (la.next(), lb.next()) {
            (Some(x), Some(y)) if x == y => n += 1,
            (None, None) => return None,
            _ => return Some(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oryx_proto::antelope::KeyType;

    use crate::backend::KeyBackend;
    use crate::backend::soft::SoftKey;
    use crate::signing::{SignOptions, sign};

    fn no_files(_: &str) -> Option<Vec<u8>> {
        None
    }

    /// A transcript of three plain steps, signed over its head by `audit`.
    fn sample(audit: &SoftKey) -> Transcript {
        let mut t = Transcript::begin(
            "00112233445566778899aabbccddeeff",
            "test",
            json!({"producer": "oryxproducer", "b": 1, "a": [1, 2]}),
            "2030-01-01T00:00:00".into(),
        );
        t.append(
            steps::NOTE,
            json!({"text": "one"}),
            "2030-01-01T00:00:01".into(),
        );
        t.append(
            steps::NOTE,
            json!({"text": "two"}),
            "2030-01-01T00:00:02".into(),
        );
        seal(&mut t, audit);
        t
    }

    fn seal(t: &mut Transcript, audit: &SoftKey) {
        let (seq, head) = t.head().expect("head");
        let digest = transcript_digest(&t.ceremony, &head);
        let sig = sign(audit, &digest, SignOptions::default())
            .expect("signs")
            .signature;
        t.signatures.push(HeadSignature {
            seq,
            head: head.to_string(),
            digest: digest.to_string(),
            public_key: audit.public_key().to_string(),
            signature: sig.to_string(),
            audit: Some(AuditPos {
                seq: 7,
                hash: ZERO_HASH.into(),
            }),
        });
    }

    fn key() -> SoftKey {
        SoftKey::generate(KeyType::K1).expect("key")
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let v = json!({"b": {"z": 1, "a": [{"y": true, "x": null}]}, "a": "é\n"});
        assert_eq!(
            canonical_json(&v),
            r#"{"a":"é\n","b":{"a":[{"x":null,"y":true}],"z":1}}"#
        );
    }

    #[test]
    fn a_sealed_transcript_verifies() {
        let audit = key();
        let t = sample(&audit);
        let r = verify(&t.to_text(), None, &no_files).expect("verifies");
        assert_eq!((r.entries, r.signatures, r.signed_through), (3, 1, Some(2)));
        assert_eq!(r.audit_key, Some(*audit.public_key()));
        verify(&t.to_text(), Some(audit.public_key()), &no_files).expect("with the audit key");
        let other = key();
        let e = verify(&t.to_text(), Some(other.public_key()), &no_files).expect_err("other key");
        assert!(e.contains("not the audit key"), "{e}");
        // The documented digest, recomputed independently of transcript_digest.
        let mut pre = b"oryx transcript v1\0".to_vec();
        pre.extend_from_slice(t.ceremony.as_bytes());
        pre.push(0);
        pre.extend_from_slice(&Checksum256::from_hex(&t.entries[2].hash).expect("hex").0);
        assert_eq!(t.signatures[0].digest, Checksum256::hash(&pre).to_string());
    }

    #[test]
    fn edits_deletions_and_reorders_are_refused_naming_the_entry() {
        let audit = key();
        let t = sample(&audit);
        let cases: Vec<(Transcript, &str)> = vec![
            (
                {
                    let mut x = t.clone();
                    x.entries[1].data = json!({"text": "One"});
                    x
                },
                "entry 1 (note): hash does not match",
            ),
            (
                {
                    let mut x = t.clone();
                    x.entries[1].time = "2030-01-01T00:00:09".into();
                    x
                },
                "entry 1 (note): hash does not match",
            ),
            (
                {
                    let mut x = t.clone();
                    x.entries.remove(1);
                    x
                },
                "entry 1 (note): seq is 2",
            ),
            (
                {
                    let mut x = t.clone();
                    x.entries.swap(1, 2);
                    x
                },
                "entry 1 (note): seq is 2",
            ),
            (
                {
                    // Renumbered after a deletion: the chain still breaks.
                    let mut x = t.clone();
                    x.entries.remove(1);
                    x.entries[1].seq = 1;
                    x
                },
                "entry 1 (note): prev does not match",
            ),
            (
                {
                    let mut x = t.clone();
                    x.entries.pop();
                    x
                },
                "signature 0 (over entry 2): there is no entry 2",
            ),
            (
                {
                    let mut x = t.clone();
                    x.params["producer"] = json!("someoneelse");
                    x
                },
                "entry 0 (begin): the header",
            ),
            (
                {
                    let mut x = t.clone();
                    x.kind = "other".into();
                    x
                },
                "entry 0 (begin): the header",
            ),
            (
                {
                    let mut x = t.clone();
                    x.append(
                        steps::NOTE,
                        json!({"text": "late"}),
                        "2030-01-01T00:00:03".into(),
                    );
                    x
                },
                "entries 3..=3 are not covered",
            ),
            (
                {
                    let mut x = t.clone();
                    x.signatures[0].signature = x.signatures[0].signature.replace('K', "L");
                    x
                },
                "signature 0",
            ),
            (
                {
                    let mut x = t.clone();
                    x.signatures[0].public_key = key().public_key().to_string();
                    x
                },
                "does not recover",
            ),
        ];
        for (x, want) in cases {
            let e = verify(&x.to_text(), None, &no_files).expect_err(want);
            assert!(e.contains(want), "want {want:?}, got {e:?}");
        }
    }

    #[test]
    fn every_single_byte_edit_is_refused() {
        let audit = key();
        let text = sample(&audit).to_text();
        let bytes = text.as_bytes();
        // Every position, each changed to a byte that keeps the file valid UTF-8.
        for i in 0..bytes.len() {
            let mut edited = bytes.to_vec();
            edited[i] = if bytes[i] == b' ' { b'\t' } else { b' ' };
            let Ok(s) = String::from_utf8(edited) else {
                continue;
            };
            assert!(
                verify(&s, None, &no_files).is_err(),
                "edit at byte {i} ({:?}) went unnoticed",
                bytes[i] as char
            );
        }
    }

    #[test]
    fn signatures_by_two_keys_are_refused() {
        let a = key();
        let mut t = sample(&a);
        t.append(
            steps::NOTE,
            json!({"text": "three"}),
            "2030-01-01T00:00:03".into(),
        );
        seal(&mut t, &key());
        let e = verify(&t.to_text(), None, &no_files).expect_err("two keys");
        assert!(e.contains("one transcript, one audit key"), "{e}");
    }
}

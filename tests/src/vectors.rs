//! Real-chain test vectors. Every file found is checked: the copy in this repository, the
//! shared copy beside it (`../shared/vectors/antelope.json`) when it exists, and the file named
//! by `ORYX_VECTORS`, so new vectors can be dropped in without a code change.

use std::path::PathBuf;

use serde_json::Value;

/// Paths of every vector file to check (deduplicated by content).
pub fn files() -> Vec<PathBuf> {
    let root = crate::workspace_root();
    let mut candidates = vec![
        root.join("tests/vectors/antelope.json"),
        root.join("../shared/vectors/antelope.json"),
    ];
    if let Ok(extra) = std::env::var("ORYX_VECTORS") {
        candidates.extend(
            extra
                .split(':')
                .filter(|s| !s.is_empty())
                .map(PathBuf::from),
        );
    }
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for path in candidates {
        if let Ok(bytes) = std::fs::read(&path)
            && !seen.contains(&bytes)
        {
            seen.push(bytes);
            out.push(path);
        }
    }
    out
}

/// Every vector file, parsed, with its path.
pub fn load_all() -> Vec<(PathBuf, Value)> {
    let files = files();
    assert!(
        !files.is_empty(),
        "no vector file found: tests/vectors/antelope.json is missing"
    );
    files
        .into_iter()
        .map(|p| {
            let text =
                std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, v)
        })
        .collect()
}

/// The entries of one section (empty when the section is absent).
pub fn section<'a>(doc: &'a Value, name: &str) -> &'a [Value] {
    doc.get(name)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// A string field, panicking with the entry's id when absent.
pub fn s<'a>(entry: &'a Value, field: &str) -> &'a str {
    entry
        .get(field)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{}: missing string field {field}", label(entry)))
}

/// An optional string field (absent or null → None).
pub fn opt<'a>(entry: &'a Value, field: &str) -> Option<&'a str> {
    entry.get(field).and_then(Value::as_str)
}

/// A label for messages: the entry's `id`, `name` or `string`.
pub fn label(entry: &Value) -> String {
    ["id", "name", "string", "chain"]
        .iter()
        .find_map(|k| entry.get(*k).and_then(Value::as_str))
        .unwrap_or("<entry>")
        .to_string()
}

/// Parses a decimal u64 given as a string or a number.
pub fn u64_field(entry: &Value, field: &str) -> u64 {
    match entry.get(field) {
        Some(Value::String(s)) => s
            .parse()
            .unwrap_or_else(|e| panic!("{}: {field}: {e}", label(entry))),
        Some(Value::Number(n)) => n
            .as_u64()
            .unwrap_or_else(|| panic!("{}: {field} not a u64", label(entry))),
        _ => panic!("{}: missing {field}", label(entry)),
    }
}

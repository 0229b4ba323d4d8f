//! Why a policy file was refused: syntax errors with their line and column, semantic errors with
//! the rule and line they concern.
//!
//! Guards: an operator can fix a refused file from the message alone — every error says where
//! and what — and the signer can refuse to start (or keep its old policy) on any of them.

use std::fmt;

/// A policy file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The file is not valid TOML, or does not have the policy's shape (unknown or missing
    /// field, wrong type).
    #[error("line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line.
        line: usize,
        /// 1-based column (in characters).
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// The file parses but says something invalid.
    #[error("{}", Located { line: *line, rule: rule.as_deref(), message })]
    Invalid {
        /// The rule concerned, if any.
        rule: Option<String>,
        /// 1-based line, when known.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
}

impl PolicyError {
    /// The 1-based line the error concerns, when known.
    pub fn line(&self) -> Option<usize> {
        match self {
            PolicyError::Syntax { line, .. } => Some(*line),
            PolicyError::Invalid { line, .. } => *line,
        }
    }
}

struct Located<'a> {
    line: Option<usize>,
    rule: Option<&'a str>,
    message: &'a str,
}

impl fmt::Display for Located<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if let Some(rule) = self.rule {
            write!(f, "rule {rule:?}: ")?;
        }
        f.write_str(self.message)
    }
}

/// 1-based (line, column) of a byte offset in `text`.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 6), (2, 1));
        assert_eq!(line_col(text, 9), (2, 3));
        assert_eq!(line_col(text, 100), (3, 1));
    }

    #[test]
    fn messages() {
        let e = PolicyError::Invalid {
            rule: Some("custody".into()),
            line: Some(7),
            message: "threshold must be at least 1".into(),
        };
        assert_eq!(
            e.to_string(),
            "line 7: rule \"custody\": threshold must be at least 1"
        );
        assert_eq!(e.line(), Some(7));
    }
}

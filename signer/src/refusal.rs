//! The refusal vocabulary every signer service answers with: a machine-readable [`Reason`] and a
//! message safe to send to the client ([`Refused`]).
//!
//! Guards: services below the gRPC front return these and nothing transport-shaped; the front
//! (`server::to_status`) maps them to gRPC statuses in one place. No message carries a secret:
//! backend and audit errors are mapped here ([`sign_failure`]) and principals are made printable
//! and bounded before they reach the audit log ([`sanitize_principal`]).

use crate::audit::{AuditDecision, AuditEntryRef};
use crate::signing::SignError;

/// Machine-readable refusal reasons (the `oryx.v1.Reason` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The watermark refused.
    DoubleSign,
    /// The authorizer refused.
    PolicyDenied,
    /// The key is not held here.
    UnknownKey,
    /// The key is not configured for the chain.
    WrongChain,
    /// The request does not decode.
    Malformed,
    /// Blind digests are not allowed for the key.
    BlindNotAllowed,
    /// An HSM or the watermark store or the audit log is unavailable.
    Unavailable,
    /// The signer failed.
    Internal,
    /// Stored as a pending request until enough approvers approve.
    NeedsApprovals,
    /// An approval that is forged, late, or for a closed request.
    ApprovalRejected,
    /// The key was retired by a rotation ceremony.
    KeyRetired,
    /// A key-lifecycle call from a principal that is not an admin.
    NotAdmin,
    /// The signer's configuration lacks what the call needs.
    NotConfigured,
}

impl Reason {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::DoubleSign => "DOUBLE_SIGN",
            Reason::PolicyDenied => "POLICY_DENIED",
            Reason::UnknownKey => "UNKNOWN_KEY",
            Reason::WrongChain => "WRONG_CHAIN",
            Reason::Malformed => "MALFORMED",
            Reason::BlindNotAllowed => "BLIND_NOT_ALLOWED",
            Reason::Unavailable => "UNAVAILABLE",
            Reason::Internal => "INTERNAL",
            Reason::NeedsApprovals => "NEEDS_APPROVALS",
            Reason::ApprovalRejected => "APPROVAL_REJECTED",
            Reason::KeyRetired => "KEY_RETIRED",
            Reason::NotAdmin => "NOT_ADMIN",
            Reason::NotConfigured => "NOT_CONFIGURED",
        }
    }

    /// How a refusal for this reason is audited: an outage or a bug is `failed`, a request
    /// stored for approvals `pending`, any other decision about the request `refused`.
    pub fn audit_decision(self) -> AuditDecision {
        match self {
            Reason::Unavailable | Reason::Internal => AuditDecision::Failed,
            Reason::NeedsApprovals => AuditDecision::Pending,
            _ => AuditDecision::Refused,
        }
    }
}

/// A refusal or failure, with a message safe to send to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", reason.as_str())]
pub struct Refused {
    /// Why.
    pub reason: Reason,
    /// Detail for the operator.
    pub message: String,
    /// For [`Reason::NeedsApprovals`]: the pending request's id.
    pub request_id: Option<String>,
    /// Where the refusal is in the audit log, once it is recorded there.
    pub audit: Option<AuditEntryRef>,
}

/// A refusal not yet recorded anywhere.
pub fn refused(reason: Reason, message: impl Into<String>) -> Refused {
    Refused {
        reason,
        request_id: None,
        audit: None,
        message: message.into(),
    }
}

/// A signing failure as a refusal: a backend outage is `UNAVAILABLE` (try again, or another
/// signer), anything else `INTERNAL`.
pub fn sign_failure(e: SignError) -> Refused {
    match e {
        SignError::Backend(crate::backend::BackendError::Unavailable(m)) => {
            refused(Reason::Unavailable, m)
        }
        other => refused(Reason::Internal, other.to_string()),
    }
}

/// Principals come from certificates; keep the audit field printable and within the audit
/// record's 256-byte bound (cut at a character boundary).
pub fn sanitize_principal(p: &str) -> String {
    let mut s = String::new();
    for c in p.chars().filter(|c| !c.is_control()) {
        if s.len() + c.len_utf8() > 200 {
            break;
        }
        s.push(c);
    }
    if s.is_empty() { "<none>".into() } else { s }
}

/// The principals that may run admin calls (the key lifecycle) and cancel any approval request
/// (the config's `admins`), and those that may read every approval request (admins and
/// `reviewers`): checked here and nowhere else.
#[derive(Debug, Clone, Default)]
pub struct Admins(Vec<String>, Vec<String>);

impl Admins {
    /// The config's list.
    pub fn new(principals: Vec<String>) -> Self {
        Admins(principals, Vec::new())
    }

    /// With the config's `reviewers`: principals that may read every approval request.
    pub fn with_reviewers(mut self, reviewers: Vec<String>) -> Self {
        self.1 = reviewers;
        self
    }

    /// Whether `principal` is an admin.
    pub fn contains(&self, principal: &str) -> bool {
        self.0.iter().any(|a| a == principal)
    }

    /// Whether `principal` may read every approval request: an admin or a reviewer (anyone
    /// else reads only its own requests).
    pub fn may_review(&self, principal: &str) -> bool {
        self.contains(principal) || self.1.iter().any(|a| a == principal)
    }

    /// `NOT_ADMIN` unless `principal` is an admin; `call` names what was asked.
    pub fn require(&self, principal: &str, call: &str) -> Result<(), Refused> {
        if self.contains(principal) {
            Ok(())
        } else {
            Err(refused(
                Reason::NotAdmin,
                format!(
                    "{call} is for admins: {principal:?} is not listed in the signer's `admins`"
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn principals_are_printable_and_bounded() {
        assert_eq!(sanitize_principal("node1"), "node1");
        assert_eq!(sanitize_principal("a\nb\r\0c"), "abc");
        assert_eq!(sanitize_principal("\n"), "<none>");
        let long = "é".repeat(300);
        let s = sanitize_principal(&long);
        assert!(s.len() <= 200 && s.chars().all(|c| c == 'é'));
    }

    #[test]
    fn only_listed_principals_are_admins() {
        let admins = Admins::new(vec!["ops".into()]);
        assert!(admins.require("ops", "RetireKey").is_ok());
        let r = admins.require("node1", "RetireKey").unwrap_err();
        assert_eq!(r.reason, Reason::NotAdmin);
        assert!(r.message.contains("RetireKey") && r.message.contains("node1"));
    }
}

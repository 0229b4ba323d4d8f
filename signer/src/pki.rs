//! The operator's small PKI for mTLS: a CA, the signer's server certificate, one client
//! certificate per principal (its SAN DNS name and CN are the principal), and the revocation
//! list the signer enforces.
//!
//! Guards: every gRPC peer is authenticated by a certificate from this CA; keys are ECDSA P-256
//! generated locally, and private keys are written only to 0600 files by the caller. Every
//! certificate expires (one year unless asked otherwise) and carries a random serial, by which
//! [`Ca::crl`] revokes it; [`Revocations::load`] accepts only a list signed by the CA itself.
//! The CA's own files and register live in a directory apart from the signer's ([`ca_dir`]).

use std::collections::HashSet;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CertifiedIssuer, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevokedCertParams, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

pub mod ca_dir;

/// How long a client or server certificate is valid unless asked otherwise.
pub const DEFAULT_DAYS: u32 = 365;
/// Longest validity `certs issue --days` accepts.
pub const MAX_DAYS: u32 = 3650;
/// How long the CA certificate is valid.
const CA_DAYS: i64 = 3650;

/// A certificate and its private key, PEM.
#[derive(Clone)]
pub struct Issued {
    /// The certificate.
    pub cert_pem: String,
    /// Its private key (secret).
    pub key_pem: String,
    /// Its serial number, lowercase hex (what `certs revoke` and the CRL name).
    pub serial: String,
    /// When it expires.
    pub not_after: OffsetDateTime,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Issued(<redacted>)")
    }
}

/// A certificate authority in memory.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
    key_pem: zeroize::Zeroizing<String>,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ca(<redacted>)")
    }
}

fn err(e: rcgen::Error) -> String {
    format!("certificate generation failed: {e}")
}

impl Ca {
    /// A new self-signed CA named `name`, valid for ten years.
    pub fn new(name: &str) -> Result<Self, String> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let (not_before, not_after) = validity(CA_DAYS);
        params.not_before = not_before;
        params.not_after = not_after;
        params.serial_number = Some(random_serial()?);
        let key = KeyPair::generate().map_err(err)?;
        let key_pem = key.serialize_pem();
        let cert_pem = CertifiedIssuer::self_signed(params, key)
            .map_err(err)?
            .pem();
        Self::from_pem(&cert_pem, &key_pem)
    }

    /// The CA from its certificate and private key (PEM), as `oryx-signer certs` reads them.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, String> {
        let key = KeyPair::from_pem(key_pem).map_err(|e| format!("CA key: {e}"))?;
        let issuer =
            Issuer::from_ca_cert_pem(cert_pem, key).map_err(|e| format!("CA certificate: {e}"))?;
        let check = KeyPair::from_pem(key_pem).map_err(|e| format!("CA key: {e}"))?;
        let der = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes())
            .map_err(|e| format!("CA certificate: {e}"))?
            .1;
        let cert = der
            .parse_x509()
            .map_err(|e| format!("CA certificate: {e}"))?;
        if cert.public_key().subject_public_key.data.as_ref() != check.public_key_raw() {
            return Err("the CA key does not belong to the CA certificate".into());
        }
        Ok(Ca {
            issuer,
            cert_pem: cert_pem.to_owned(),
            key_pem: zeroize::Zeroizing::new(key_pem.to_owned()),
        })
    }

    /// The CA certificate (PEM), for trust stores.
    pub fn cert_pem(&self) -> String {
        self.cert_pem.clone()
    }

    /// The CA private key (PEM). Keep it offline once the certificates are issued.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    fn issue(
        &self,
        cn: &str,
        sans: Vec<SanType>,
        usage: ExtendedKeyUsagePurpose,
        days: u32,
    ) -> Result<Issued, String> {
        if days == 0 || days > MAX_DAYS {
            return Err(format!("validity must be 1 to {MAX_DAYS} days, got {days}"));
        }
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        params.distinguished_name.push(DnType::CommonName, cn);
        params.subject_alt_names = sans;
        params.extended_key_usages = vec![usage];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let (not_before, not_after) = validity(i64::from(days));
        params.not_before = not_before;
        params.not_after = not_after;
        let serial = random_serial()?;
        params.serial_number = Some(serial.clone());
        let key = KeyPair::generate().map_err(err)?;
        let cert = params.signed_by(&key, &self.issuer).map_err(err)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            serial: hex::encode(serial.as_ref()),
            not_after,
        })
    }

    /// A certificate revocation list naming `revoked` (serial hex, when), numbered `number`.
    pub fn crl(&self, revoked: &[(String, OffsetDateTime)], number: u64) -> Result<String, String> {
        let now = OffsetDateTime::now_utc();
        let revoked_certs = revoked
            .iter()
            .map(|(serial, at)| {
                let bytes = hex::decode(serial).map_err(|e| format!("serial {serial}: {e}"))?;
                Ok(RevokedCertParams {
                    serial_number: SerialNumber::from_slice(&bytes),
                    revocation_time: *at,
                    reason_code: None,
                    invalidity_date: None,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let params = CertificateRevocationListParams {
            this_update: now - Duration::minutes(5),
            next_update: now + Duration::days(365),
            crl_number: SerialNumber::from_slice(&number.to_be_bytes()),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        params
            .signed_by(&self.issuer)
            .map_err(err)?
            .pem()
            .map_err(err)
    }

    /// A server certificate for these host names and IP addresses, valid for `days`.
    pub fn server(&self, hosts: &[&str], days: u32) -> Result<Issued, String> {
        let sans = hosts
            .iter()
            .map(|h| match h.parse::<std::net::IpAddr>() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) => (*h).try_into().map(SanType::DnsName).map_err(err),
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.issue(
            hosts.first().copied().unwrap_or("oryx-signer"),
            sans,
            ExtendedKeyUsagePurpose::ServerAuth,
            days,
        )
    }

    /// A client certificate whose principal is `principal` (SAN DNS name and CN), valid for
    /// `days`.
    pub fn client(&self, principal: &str, days: u32) -> Result<Issued, String> {
        let ok = !principal.is_empty()
            && principal.len() <= 253
            && !principal.starts_with(['-', '.'])
            && principal
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        if !ok {
            return Err(format!(
                "principal {principal:?} must be a DNS-style name: letters, digits, '-' and '.'"
            ));
        }
        let san = principal
            .try_into()
            .map(SanType::DnsName)
            .map_err(|e| format!("principal {principal:?} must be a DNS-style name: {e}"))?;
        self.issue(
            principal,
            vec![san],
            ExtendedKeyUsagePurpose::ClientAuth,
            days,
        )
    }
}

/// From five minutes ago (clock skew) to `days` from now.
fn validity(days: i64) -> (OffsetDateTime, OffsetDateTime) {
    let now = OffsetDateTime::now_utc();
    (now - Duration::minutes(5), now + Duration::days(days))
}

/// 16 random bytes, positive as a DER integer and never starting with a zero byte.
fn random_serial() -> Result<SerialNumber, String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| format!("random source: {e}"))?;
    b[0] = (b[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&b))
}

/// A serial number as compared: its big-endian bytes without leading zeros.
fn serial_key(raw: &[u8]) -> Vec<u8> {
    let start = raw.iter().position(|&b| b != 0).unwrap_or(raw.len());
    raw[start..].to_vec()
}

/// The serial numbers a CA-signed revocation list names: what the signer refuses, at the
/// handshake (rustls checks the same list) and on every request of a connection opened before
/// the list was loaded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Revocations {
    serials: HashSet<Vec<u8>>,
}

impl Revocations {
    /// Parses every CRL in `crl_pem` and keeps it only if it is signed by (and names as issuer)
    /// the CA in `ca_pem`; a list from anyone else is an error, not an empty list.
    pub fn load(crl_pem: &[u8], ca_pem: &[u8]) -> Result<Self, String> {
        use x509_parser::prelude::*;
        let (_, ca) = x509_parser::pem::parse_x509_pem(ca_pem).map_err(|e| format!("CA: {e}"))?;
        let ca = ca.parse_x509().map_err(|e| format!("CA: {e}"))?;
        let mut serials = HashSet::new();
        let mut lists = 0;
        for pem in Pem::iter_from_buffer(crl_pem) {
            let pem = pem.map_err(|e| format!("revocation list: {e}"))?;
            if pem.label != "X509 CRL" {
                return Err(format!(
                    "revocation list: a {:?} block is not a CRL",
                    pem.label
                ));
            }
            let (_, crl) =
                parse_x509_crl(&pem.contents).map_err(|e| format!("revocation list: {e}"))?;
            if crl.issuer() != ca.subject() {
                return Err("revocation list: issued by another CA".into());
            }
            crl.verify_signature(ca.public_key()).map_err(|e| {
                format!("revocation list: signature does not verify with the CA: {e}")
            })?;
            serials.extend(
                crl.iter_revoked_certificates()
                    .map(|r| serial_key(r.raw_serial())),
            );
            lists += 1;
        }
        if lists == 0 {
            return Err("revocation list: no CRL in the file".into());
        }
        Ok(Revocations { serials })
    }

    /// Whether the certificate with this raw serial is revoked.
    pub fn contains(&self, raw_serial: &[u8]) -> bool {
        self.serials.contains(&serial_key(raw_serial))
    }

    /// How many serials are revoked.
    pub fn len(&self) -> usize {
        self.serials.len()
    }

    /// Whether nothing is revoked.
    pub fn is_empty(&self) -> bool {
        self.serials.is_empty()
    }
}

/// Creates a file with mode 0600 (never over an existing one), durably and whole.
pub fn write_secret(path: &std::path::Path, contents: &str) -> Result<(), String> {
    crate::durable::create_new(path, contents.as_bytes(), 0o600)
        .map_err(|e| format!("{}: {}", e.path.display(), e.source))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn client_certificates_name_their_principal() {
        let ca = Ca::new("test CA").unwrap();
        let c = ca.client("node1", DEFAULT_DAYS).unwrap();
        let der = x509_parser::pem::parse_x509_pem(c.cert_pem.as_bytes())
            .unwrap()
            .1
            .contents;
        assert_eq!(crate::server::principal_of(&der).as_deref(), Some("node1"));
        assert!(ca.client("not a name!", DEFAULT_DAYS).is_err());
        assert!(ca.server(&["localhost", "127.0.0.1"], DEFAULT_DAYS).is_ok());
        assert!(ca.client("node1", 0).is_err());
        assert!(ca.client("node1", MAX_DAYS + 1).is_err());
    }

    #[test]
    fn certificates_expire_and_carry_their_serial() {
        let ca = Ca::new("test CA").unwrap();
        let c = ca.client("node1", 30).unwrap();
        let pem = x509_parser::pem::parse_x509_pem(c.cert_pem.as_bytes())
            .unwrap()
            .1;
        let cert = pem.parse_x509().unwrap();
        let days = (cert.validity().not_after.timestamp()
            - OffsetDateTime::now_utc().unix_timestamp())
            / 86_400;
        assert!((29..=30).contains(&days), "{days}");
        assert_eq!(hex::encode(cert.raw_serial()), c.serial);
        assert_eq!(
            c.not_after.unix_timestamp(),
            cert.validity().not_after.timestamp()
        );
    }

    #[test]
    fn a_reloaded_ca_issues_and_revokes_and_only_its_own_list_is_accepted() {
        let ca = Ca::new("test CA").unwrap();
        let again = Ca::from_pem(&ca.cert_pem(), ca.key_pem()).unwrap();
        let a = again.client("a", 1).unwrap();
        let b = again.client("b", 1).unwrap();
        let crl = again
            .crl(&[(a.serial.clone(), OffsetDateTime::now_utc())], 1)
            .unwrap();
        let r = Revocations::load(crl.as_bytes(), ca.cert_pem().as_bytes()).unwrap();
        assert!(r.contains(&hex::decode(&a.serial).unwrap()));
        assert!(!r.contains(&hex::decode(&b.serial).unwrap()));
        assert_eq!(r.len(), 1);
        // A list signed by another CA, or garbage, is an error, never an empty list.
        let other = Ca::new("test CA").unwrap();
        let forged = other.crl(&[], 1).unwrap();
        assert!(Revocations::load(forged.as_bytes(), ca.cert_pem().as_bytes()).is_err());
        assert!(Revocations::load(b"nothing", ca.cert_pem().as_bytes()).is_err());
        assert!(Revocations::load(ca.cert_pem().as_bytes(), ca.cert_pem().as_bytes()).is_err());
        // A key that is not the certificate's is refused.
        assert!(Ca::from_pem(&ca.cert_pem(), other.key_pem()).is_err());
    }
}

//! The operator's small PKI for mTLS: a CA, the signer's server certificate, and one client
//! certificate per principal (its SAN DNS name and CN are the principal).
//!
//! Guards: every gRPC peer is authenticated by a certificate from this CA; keys are ECDSA P-256
//! generated locally, and private keys are written only to 0600 files by the caller.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};

/// A certificate and its private key, PEM.
#[derive(Clone)]
pub struct Issued {
    /// The certificate.
    pub cert_pem: String,
    /// Its private key (secret).
    pub key_pem: String,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Issued(<redacted>)")
    }
}

/// A certificate authority in memory.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
    key_pem: String,
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
    /// A new self-signed CA named `name`.
    pub fn new(name: &str) -> Result<Self, String> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().map_err(err)?;
        let key_pem = key.serialize_pem();
        let issuer = CertifiedIssuer::self_signed(params, key).map_err(err)?;
        Ok(Ca { issuer, key_pem })
    }

    /// The CA certificate (PEM), for trust stores.
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
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
    ) -> Result<Issued, String> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        params.distinguished_name.push(DnType::CommonName, cn);
        params.subject_alt_names = sans;
        params.extended_key_usages = vec![usage];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate().map_err(err)?;
        let cert = params.signed_by(&key, &self.issuer).map_err(err)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// A server certificate for these host names and IP addresses.
    pub fn server(&self, hosts: &[&str]) -> Result<Issued, String> {
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
        )
    }

    /// A client certificate whose principal is `principal` (SAN DNS name and CN).
    pub fn client(&self, principal: &str) -> Result<Issued, String> {
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
        self.issue(principal, vec![san], ExtendedKeyUsagePurpose::ClientAuth)
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
        let c = ca.client("node1").unwrap();
        let der = x509_parser::pem::parse_x509_pem(c.cert_pem.as_bytes())
            .unwrap()
            .1
            .contents;
        assert_eq!(crate::server::principal_of(&der).as_deref(), Some("node1"));
        assert!(ca.client("not a name!").is_err());
        assert!(ca.server(&["localhost", "127.0.0.1"]).is_ok());
    }
}

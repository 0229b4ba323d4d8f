//! [`CaDir`]: the CA's own directory — kept apart from the signer's, and offline once the
//! certificates are issued — with its key, its certificate, the register of every certificate
//! it issued and the revocation list it signs.
//!
//! Guards: the CA key is written 0600 into a 0700 directory and read only if nobody else can
//! read it; the register (`certs.json`) and `crl.pem` are replaced atomically, the CRL always
//! from the whole register, so a revocation is never lost by a later one; a name that matches
//! several live certificates revokes none (the serial picks one).
//!
//! Layout: `ca.pem`, `ca.key`, `certs.json` (a JSON array of [`Record`]), `crl.pem`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Ca, Issued};

/// The role a certificate plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A gRPC client: its name is the principal.
    Client,
    /// The signer's TLS server certificate.
    Server,
}

/// One issued certificate in the register.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// The principal (client) or first host name (server).
    pub name: String,
    /// Client or server.
    pub role: Role,
    /// Serial number, lowercase hex.
    pub serial: String,
    /// Expiry, Unix seconds.
    pub not_after: i64,
    /// When it was revoked, Unix seconds.
    #[serde(default)]
    pub revoked: Option<i64>,
}

impl Record {
    /// `valid`, `expired` or `revoked` at `now` (Unix seconds).
    pub fn status(&self, now: i64) -> &'static str {
        match self.revoked {
            Some(_) => "revoked",
            None if self.not_after <= now => "expired",
            None => "valid",
        }
    }
}

/// Why a CA directory could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CaDirError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A file is not what the directory should hold.
    #[error("{path}: {detail}")]
    Bad {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// `revoke` named no certificate, or several.
    #[error("{0}")]
    Which(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CaDirError + '_ {
    move |source| CaDirError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The CA directory.
#[derive(Debug, Clone)]
pub struct CaDir {
    dir: PathBuf,
}

impl CaDir {
    /// Creates `dir` (0700; it must not exist or be empty) holding `ca`, an empty register and
    /// an empty revocation list.
    pub fn create(dir: &Path, ca: &Ca) -> Result<Self, CaDirError> {
        if dir.exists() && std::fs::read_dir(dir).map_err(io(dir))?.next().is_some() {
            return Err(CaDirError::Bad {
                path: dir.to_owned(),
                detail: "exists and is not empty; a new CA goes into a new directory".into(),
            });
        }
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        #[cfg(unix)]
        std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .map_err(io(dir))?;
        let d = CaDir {
            dir: dir.to_owned(),
        };
        write(&d.cert_path(), ca.cert_pem().as_bytes(), 0o644)?;
        let key = d.dir.join("ca.key");
        crate::durable::create_new(&key, ca.key_pem().as_bytes(), 0o600).map_err(|e| {
            CaDirError::Io {
                path: e.path,
                source: e.source,
            }
        })?;
        d.save(&[])?;
        d.write_crl(ca, &[])?;
        Ok(d)
    }

    /// Opens an existing CA directory and reads its CA (the key must be private to its owner).
    pub fn open(dir: &Path) -> Result<(Self, Ca), CaDirError> {
        let d = CaDir {
            dir: dir.to_owned(),
        };
        let key_path = d.dir.join("ca.key");
        crate::secret::private_file_mode(&key_path).map_err(|mode| CaDirError::Bad {
            path: key_path.clone(),
            detail: format!("the CA key is open to other users (mode {mode:03o}): `chmod 600` it"),
        })?;
        let key = zeroize::Zeroizing::new(read(&key_path)?);
        let cert = read(&d.cert_path())?;
        let ca = Ca::from_pem(&cert, &key).map_err(|detail| CaDirError::Bad {
            path: d.dir.clone(),
            detail,
        })?;
        Ok((d, ca))
    }

    /// The CA certificate's path.
    pub fn cert_path(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// The revocation list's path.
    pub fn crl_path(&self) -> PathBuf {
        self.dir.join("crl.pem")
    }

    /// Every certificate issued, oldest first.
    pub fn records(&self) -> Result<Vec<Record>, CaDirError> {
        let path = self.register_path();
        let text = read(&path)?;
        serde_json::from_str(&text).map_err(|e| CaDirError::Bad {
            path,
            detail: format!("not a certificate register: {e}"),
        })
    }

    /// Holds the directory's lock (`.lock`) until dropped: one register change at a time, so
    /// an issue and a revocation running together cannot drop each other's record.
    fn lock(&self) -> Result<std::fs::File, CaDirError> {
        let path = self.dir.join(".lock");
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io(&path))?;
        f.lock().map_err(io(&path))?;
        Ok(f)
    }

    /// Enters a newly issued certificate in the register (before its files are handed out, so
    /// every certificate that exists can be revoked).
    pub fn enter(&self, name: &str, role: Role, issued: &Issued) -> Result<(), CaDirError> {
        let _lock = self.lock()?;
        let mut records = self.records()?;
        records.push(Record {
            name: name.to_owned(),
            role,
            serial: issued.serial.clone(),
            not_after: issued.not_after.unix_timestamp(),
            revoked: None,
        });
        self.save(&records)
    }

    /// Revokes the certificate `which` names (a serial, or a name with one unrevoked
    /// certificate), rewrites the register and the CRL; the record as it is now. A certificate
    /// revoked before is reported, not revoked again.
    pub fn revoke(&self, ca: &Ca, which: &str) -> Result<(Record, bool), CaDirError> {
        let _lock = self.lock()?;
        let mut records = self.records()?;
        let by_serial: Vec<usize> = (0..records.len())
            .filter(|&i| records[i].serial.eq_ignore_ascii_case(which))
            .collect();
        let by_name: Vec<usize> = (0..records.len())
            .filter(|&i| records[i].name == which && records[i].revoked.is_none())
            .collect();
        let i = match (by_serial.as_slice(), by_name.as_slice()) {
            ([i], _) => *i,
            ([], [i]) => *i,
            ([], []) => {
                return Err(CaDirError::Which(format!(
                    "no certificate named {which:?} or with that serial is in the register, or \
                     every one of that name is revoked already (`oryx-signer certs list`)"
                )));
            }
            _ => {
                return Err(CaDirError::Which(format!(
                    "{which:?} names several certificates: revoke one by its serial (`oryx-signer \
                     certs list`)"
                )));
            }
        };
        if records[i].revoked.is_some() {
            return Ok((records[i].clone(), false));
        }
        records[i].revoked = Some(OffsetDateTime::now_utc().unix_timestamp());
        // The CRL first: a register that says revoked always has a list that does too.
        self.write_crl(ca, &records)?;
        self.save(&records)?;
        Ok((records[i].clone(), true))
    }

    /// Revokes a serial the register does not hold (a certificate issued before the register
    /// existed, e.g. by an older `init`), entering it as `(unregistered)`; a registered serial
    /// is revoked as [`CaDir::revoke`] does.
    pub fn revoke_serial(&self, ca: &Ca, serial: &str) -> Result<(Record, bool), CaDirError> {
        let serial = serial.trim_start_matches("0x").to_ascii_lowercase();
        let ok = (2..=40).contains(&serial.len())
            && serial.len().is_multiple_of(2)
            && serial.bytes().all(|b| b.is_ascii_hexdigit());
        if !ok {
            return Err(CaDirError::Which(format!(
                "--serial {serial:?}: an X.509 serial is 1 to 20 bytes of hex (as `openssl x509 \
                 -noout -serial -in CERT.pem` prints it)"
            )));
        }
        {
            let _lock = self.lock()?;
            let mut records = self.records()?;
            if !records
                .iter()
                .any(|r| r.serial.eq_ignore_ascii_case(&serial))
            {
                records.push(Record {
                    name: "(unregistered)".into(),
                    role: Role::Client,
                    serial: serial.clone(),
                    not_after: i64::MAX,
                    revoked: None,
                });
                self.save(&records)?;
            }
        }
        self.revoke(ca, &serial)
    }

    /// Writes `crl.pem` naming every revoked certificate of `records`.
    fn write_crl(&self, ca: &Ca, records: &[Record]) -> Result<(), CaDirError> {
        let revoked: Vec<(String, OffsetDateTime)> = records
            .iter()
            .filter_map(|r| {
                let at = OffsetDateTime::from_unix_timestamp(r.revoked?).ok()?;
                Some((r.serial.clone(), at))
            })
            .collect();
        let number = u64::try_from(OffsetDateTime::now_utc().unix_timestamp()).unwrap_or(0);
        let pem = ca.crl(&revoked, number).map_err(|detail| CaDirError::Bad {
            path: self.crl_path(),
            detail,
        })?;
        write(&self.crl_path(), pem.as_bytes(), 0o644)
    }

    fn register_path(&self) -> PathBuf {
        self.dir.join("certs.json")
    }

    fn save(&self, records: &[Record]) -> Result<(), CaDirError> {
        let mut text = serde_json::to_string_pretty(records).map_err(|e| CaDirError::Bad {
            path: self.register_path(),
            detail: e.to_string(),
        })?;
        text.push('\n');
        write(&self.register_path(), text.as_bytes(), 0o600)
    }
}

fn read(path: &Path) -> Result<String, CaDirError> {
    std::fs::read_to_string(path).map_err(io(path))
}

fn write(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CaDirError> {
    crate::durable::write_atomic(path, bytes, mode).map_err(|e| CaDirError::Io {
        path: e.path,
        source: e.source,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::pki::Revocations;

    #[test]
    fn two_processes_changing_the_register_at_once_lose_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ca");
        let ca = Ca::new("test").unwrap();
        CaDir::create(&dir, &ca).unwrap();
        // Each thread opens the directory on its own, as two `certs` commands would.
        let handles: Vec<_> = (0..2)
            .map(|t| {
                let dir = dir.clone();
                std::thread::spawn(move || {
                    let (d, ca) = CaDir::open(&dir).unwrap();
                    for i in 0..10 {
                        let name = format!("p{t}-{i}");
                        let c = ca.client(&name, 1).unwrap();
                        d.enter(&name, Role::Client, &c).unwrap();
                        if i % 2 == 0 {
                            d.revoke(&ca, &c.serial).unwrap();
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let (d, _) = CaDir::open(&dir).unwrap();
        let records = d.records().unwrap();
        assert_eq!(records.len(), 20);
        assert_eq!(records.iter().filter(|r| r.revoked.is_some()).count(), 10);
        let crl = std::fs::read(d.crl_path()).unwrap();
        assert_eq!(
            Revocations::load(&crl, ca.cert_pem().as_bytes())
                .unwrap()
                .len(),
            10
        );
    }

    #[test]
    fn issue_revoke_and_reopen() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ca");
        let ca = Ca::new("test").unwrap();
        let d = CaDir::create(&dir, &ca).unwrap();
        assert!(
            CaDir::create(&dir, &ca).is_err(),
            "never over an existing CA"
        );
        let (d2, ca2) = CaDir::open(&dir).unwrap();
        let a1 = ca2.client("alice", 10).unwrap();
        d2.enter("alice", Role::Client, &a1).unwrap();
        let a2 = ca2.client("alice", 10).unwrap();
        d2.enter("alice", Role::Client, &a2).unwrap();
        assert_eq!(d.records().unwrap().len(), 2);
        // Two live certificates named alice: the name alone revokes neither.
        assert!(matches!(
            d2.revoke(&ca2, "alice"),
            Err(CaDirError::Which(_))
        ));
        let (r, fresh) = d2.revoke(&ca2, &a1.serial).unwrap();
        assert!(fresh && r.revoked.is_some());
        assert_eq!(r.status(0), "revoked");
        // Now the name names one live certificate.
        let (r, fresh) = d2.revoke(&ca2, "alice").unwrap();
        assert!(fresh);
        assert_eq!(r.serial, a2.serial);
        assert!(!d2.revoke(&ca2, &a1.serial).unwrap().1, "revoked before");
        assert!(matches!(d2.revoke(&ca2, "bob"), Err(CaDirError::Which(_))));
        // A certificate issued before the register (an older init): revoked by serial.
        let legacy = ca2.client("old-node", 10).unwrap();
        assert!(matches!(
            d2.revoke(&ca2, &legacy.serial),
            Err(CaDirError::Which(_))
        ));
        assert!(d2.revoke_serial(&ca2, "xyz").is_err());
        let (r, fresh) = d2
            .revoke_serial(&ca2, &legacy.serial.to_uppercase())
            .unwrap();
        assert!(fresh && r.name == "(unregistered)");
        let crl = std::fs::read(d2.crl_path()).unwrap();
        let list = Revocations::load(&crl, ca.cert_pem().as_bytes()).unwrap();
        assert_eq!(list.len(), 3);
        assert!(list.contains(&hex::decode(&legacy.serial).unwrap()));
        // A CA key others can read is refused.
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir.join("ca.key"), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        let err = CaDir::open(&dir).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
    }
}

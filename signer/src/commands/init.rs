//! `oryx-signer init DIR`: a working signer directory — config, server and client
//! certificates (one year unless `--days`), a default-deny allow-list — and, apart from it, the
//! CA directory (`DIR-ca` unless `--ca-dir`) with the CA key, the register of issued
//! certificates and the revocation list, which belongs offline once the certificates are out.
//!
//! With `--dev` it also creates an encrypted software producer key and one allow rule for the
//! first client, so `start` and `bench` work at once on a machine without an HSM (the demo).
//! Without `--dev` the config names no keys and allows nothing: add an HSM backend, generate
//! keys with `oryx-signer keys generate`, and list them and their rules explicitly.

use std::path::PathBuf;

use clap::Args;
use oryx_proto::antelope::KeyType;

use crate::backend::KeyProvider as _;
use crate::backend::soft_file::{SoftDirConfig, SoftDirProvider};
use crate::cli_error::CliError;
use crate::pki::ca_dir::{CaDir, Role};
use crate::pki::{Ca, DEFAULT_DAYS, write_secret};

/// Arguments.
#[derive(Debug, Args)]
pub struct Init {
    /// New directory to create.
    dir: PathBuf,
    /// Client principals to issue certificates for (the first one gets the `--dev` rule).
    #[arg(long = "client", default_value = "node1")]
    clients: Vec<String>,
    /// gRPC listen address.
    #[arg(long, default_value = "127.0.0.1:7150")]
    listen: String,
    /// Metrics and health listen address (loopback).
    #[arg(long, default_value = "127.0.0.1:7151")]
    metrics: String,
    /// Chain to configure (a known name or a 64-hex chain id). Default: `eos`, or with `--dev` a
    /// private development chain (so tests and `bench` never touch a public chain's heights).
    #[arg(long)]
    chain: Option<String>,
    /// The chain is not on Savanna yet (legacy block digests).
    #[arg(long)]
    legacy: bool,
    /// Development setup: a software producer key and an allow rule for the first client.
    #[arg(long)]
    dev: bool,
    /// Where the CA goes (its key, register and revocation list): not the signer's directory.
    /// Default: DIR's name with `-ca` beside it.
    #[arg(long)]
    ca_dir: Option<PathBuf>,
    /// Days until the server and client certificates expire.
    #[arg(long, default_value_t = DEFAULT_DAYS)]
    days: u32,
}

/// Whether the CA directory `ca` lies inside the signer directory `dir` (lexically, after
/// making both absolute). The directory itself and the ones the signer uses are refused: the
/// CA would be served, mixed into, or overwritten.
fn ca_inside(dir: &std::path::Path, ca: &std::path::Path) -> Result<bool, CliError> {
    let abs = |p: &std::path::Path| std::path::absolute(p).map_err(|e| CliError::io(p, e));
    let (dir, ca) = (abs(dir)?, abs(ca)?);
    if !ca.starts_with(&dir) {
        return Ok(false);
    }
    let used = ["tls", "secrets", "keys", "watermarks", "audit", "state"];
    if ca == dir || used.iter().any(|u| ca.starts_with(dir.join(u))) {
        return Err(CliError::Other(format!(
            "--ca-dir {}: the CA goes apart from the signer's directory and never into the \
             directories the signer uses",
            ca.display()
        )));
    }
    Ok(true)
}

/// Whether `dir` is missing or empty.
fn vacant(dir: &std::path::Path) -> Result<bool, CliError> {
    Ok(!dir.exists()
        || std::fs::read_dir(dir)
            .map_err(|e| CliError::io(dir, e))?
            .next()
            .is_none())
}

/// The private chain `init --dev` configures: sha256("oryx local development chain").
pub const DEV_CHAIN_ID: &str = "0261640fa4c4b1243f429b3bc69f18050bfc8b87645a218cc3b337ee34d8fa81";

fn write(path: &std::path::Path, contents: &str) -> Result<(), CliError> {
    std::fs::write(path, contents).map_err(|e| CliError::io(path, e))
}

fn random_passphrase() -> Result<String, CliError> {
    let mut b = [0u8; 24];
    getrandom::fill(&mut b).map_err(|e| CliError::Other(format!("random source: {e}")))?;
    Ok(hex::encode(b))
}

impl Init {
    /// Runs the command.
    pub fn run(self) -> Result<(), CliError> {
        let chain = match (&self.chain, self.dev) {
            (Some(c), _) => c.clone(),
            (None, true) => DEV_CHAIN_ID.to_string(),
            (None, false) => "eos".to_string(),
        };
        oryx_proto::antelope::chain::parse_chain_id(&chain)?;
        if !vacant(&self.dir)? {
            return Err(CliError::Other(format!(
                "{} exists and is not empty; init writes a new directory",
                self.dir.display()
            )));
        }
        let ca_dir = match &self.ca_dir {
            Some(d) => d.clone(),
            None => {
                let name = self.dir.file_name().ok_or_else(|| {
                    CliError::Other(format!(
                        "{} has no name to derive the CA directory from: pass --ca-dir",
                        self.dir.display()
                    ))
                })?;
                let mut name = name.to_os_string();
                name.push("-ca");
                self.dir.with_file_name(name)
            }
        };
        if !vacant(&ca_dir)? {
            return Err(CliError::Other(format!(
                "the CA directory {} exists and is not empty: pass another --ca-dir",
                ca_dir.display()
            )));
        }
        let inside = ca_inside(&self.dir, &ca_dir)?;
        for sub in ["tls", "secrets", "keys", "watermarks", "audit", "state"] {
            let d = self.dir.join(sub);
            std::fs::create_dir_all(&d).map_err(|e| CliError::io(&d, e))?;
            // Only the service user reads keys, secrets, watermarks and the audit trail.
            #[cfg(unix)]
            std::fs::set_permissions(&d, std::os::unix::fs::PermissionsExt::from_mode(0o700))
                .map_err(|e| CliError::io(&d, e))?;
        }
        let tls = self.dir.join("tls");
        let ca = Ca::new("Oryx operator CA")?;
        let cas = CaDir::create(&ca_dir, &ca)?;
        write(&tls.join("ca.pem"), &ca.cert_pem())?;
        let server = ca.server(&["localhost", "127.0.0.1"], self.days)?;
        write(&tls.join("server.pem"), &server.cert_pem)?;
        write_secret(&tls.join("server.key"), &server.key_pem)?;
        cas.enter("localhost", Role::Server, &server)?;
        for c in &self.clients {
            let cert = ca.client(c, self.days)?;
            write(&tls.join(format!("{c}.pem")), &cert.cert_pem)?;
            write_secret(&tls.join(format!("{c}.key")), &cert.key_pem)?;
            cas.enter(c, Role::Client, &cert)?;
        }
        std::fs::copy(cas.crl_path(), tls.join("crl.pem"))
            .map_err(|e| CliError::io(&tls.join("crl.pem"), e))?;

        let mut keys_section = String::new();
        let mut allow_section = String::from(
            "# Default deny: nothing is allowed until a rule names the principal, the keys and the kinds.\n\
             # [[allow]]\n# principal = \"node1\"\n# keys = [\"PUB_K1_...\"]\n# kinds = [\"block\", \"digest\"]\n",
        );
        let mut backend_section = String::new();
        if self.dev {
            write_secret(&self.dir.join("secrets/passphrase"), &random_passphrase()?)?;
            let provider = SoftDirProvider::new(SoftDirConfig {
                dir: self.dir.join("keys"),
                passphrase_file: self.dir.join("secrets/passphrase"),
            })?;
            let info = provider.generate("producer", KeyType::K1)?;
            backend_section = "[backends.dev]\ntype = \"soft\"\ndir = \"keys\"\npassphrase_file = \"secrets/passphrase\"\n".into();
            keys_section = format!(
                "[[keys]]\npublic_key = \"{}\"\nbackend = \"dev\"\nchains = [\"main\"]\nblind_digest = true\nsame_height_retry = \"refuse\"\n",
                info.public_key
            );
            allow_section = format!(
                "[[allow]]\nprincipal = \"{}\"\nkeys = [\"{}\"]\nkinds = [\"block\", \"digest\", \"transaction\"]\n",
                self.clients.first().map_or("node1", String::as_str),
                info.public_key
            );
            println!(
                "producer key: {} ({})",
                info.public_key,
                info.public_key.to_legacy_string().unwrap_or_default()
            );
        }
        let config = format!(
            "# Oryx signer configuration (written by `oryx-signer init`).\n\
             {soft}\
             # Principals that may cancel approval requests and run key ceremonies:\n\
             # admins = [\"ops\"]\n\n\
             [server]\nlisten = \"{listen}\"\nca_cert = \"tls/ca.pem\"\ncert = \"tls/server.pem\"\nkey = \"tls/server.key\"\n\
             # Revoked client certificates (the CA's crl.pem; reloaded on SIGHUP):\ncrl = \"tls/crl.pem\"\n\n\
             [observability]\nlisten = \"{metrics}\"\n\n\
             [watermarks]\ndir = \"watermarks\"\n\n\
             [audit]\npath = \"audit/audit.jsonl\"\n\
             # The key that signs ceremony transcripts (a [[keys]] entry with chains = []):\n\
             # signing_key = \"PUB_K1_...\"\n\n\
             # Keys generated or retired at runtime (GenerateKey, RetireKey; admins only).\n\
             [registry]\npath = \"state/keys.json\"\n\n\
                          [[chains]]\nname = \"main\"\nchain_id = \"{chain}\"\nsavanna = {savanna}\n{blind_start}\n\
             # Key backends, e.g.:\n# [backends.hsm]\n# type = \"pkcs11\"\n# module = \"/usr/lib/softhsm/libsofthsm2.so\"\n# token_label = \"oryx\"\n# pin_file = \"secrets/pin\"\n\
             {backend_section}\n{keys_section}\n{allow_section}",
            soft = if self.dev {
                "# Development only: software keys.\nallow_soft_keys = true\n\n"
            } else {
                ""
            },
            listen = self.listen,
            metrics = self.metrics,
            savanna = !self.legacy,
            // Only the private development chain lets a blind digest start a watermark.
            blind_start = if self.dev && self.chain.is_none() {
                "# A private development chain: a key's first blind digest may start its watermark.\nunbounded_first_blind_digest = true\n"
            } else {
                ""
            },
        );
        let path = self.dir.join("oryx-signer.toml");
        write(&path, &config)?;
        crate::config::Config::load(&path)
            .map_err(|e| CliError::Other(format!("init wrote an invalid config (a bug): {e}")))?;
        println!("wrote {}", path.display());
        println!(
            "certificates for localhost and {} valid until {} (renew with `oryx-signer certs \
             issue NAME --ca {}`)",
            self.clients.join(", "),
            crate::commands::certs::date(server.not_after.unix_timestamp()),
            ca_dir.display()
        );
        println!(
            "CA: {} (its key, the register of issued certificates and the revocation list): \
             move it offline once every certificate is issued; the signer needs only {}",
            ca_dir.display(),
            tls.join("ca.pem").display()
        );
        if inside {
            println!(
                "warning: the CA directory is inside the signer's directory: move it out (and \
                 offline) before the signer goes into service"
            );
        }
        Ok(())
    }
}

//! `oryx-signer start`: run the daemon.
//!
//! Refuses to start on anything doubtful: an invalid config, a backend that does not open, a key
//! the backend does not hold, a damaged watermark or audit log, or another signer already using
//! the same watermark directory. Prints `listening on ADDR` (and `metrics on ADDR`) on stdout
//! once it serves, and stops cleanly on SIGTERM or SIGINT.

use std::collections::HashMap;
use std::sync::Arc;

use clap::Args;
use oryx_proto::grpc;

use crate::audit::AuditLog;
use crate::authz::{AllowList, Authorizer, PolicyAuthorizer};
use crate::commands::ConfigArg;
use crate::metrics::Metrics;
use crate::pipeline::{KeyEntry, Pipeline};
use crate::server::{ReadyCheck, SignerService, TlsFiles};
use crate::signing::SignOptions;
use crate::watermark::WatermarkStore;
use crate::watermark::file::FileStore;

/// Arguments.
#[derive(Debug, Args)]
pub struct Start {
    #[command(flatten)]
    config: ConfigArg,
}

fn read(path: &std::path::Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

impl Start {
    /// Runs the daemon until SIGTERM/SIGINT.
    pub fn run(self) -> Result<(), String> {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "info".into()),
            )
            .with_writer(std::io::stderr)
            .try_init();
        let config = self.config.load()?;
        let config_bytes = read(&self.config.config)?;

        // The store takes the directory's exclusive lock and holds it for as long as anything
        // (including a signing task a client abandoned) still holds the store.
        let store: Arc<dyn WatermarkStore> =
            Arc::new(FileStore::open(&config.watermarks.dir).map_err(|e| e.to_string())?);
        if let Some(parent) = config.audit.path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        let audit = Arc::new(AuditLog::open(&config.audit.path).map_err(|e| e.to_string())?);
        let providers = crate::providers::open_all(&config)?;

        let mut chains = HashMap::new();
        let mut savanna = Vec::new();
        for c in &config.chains {
            let id = config
                .chain_id(&c.name)
                .ok_or_else(|| format!("chain {}: bad chain id", c.name))?;
            chains.insert(
                id,
                SignOptions {
                    require_canonical: c.require_canonical,
                    ..SignOptions::default()
                },
            );
            if c.savanna {
                savanna.push(id);
            }
        }
        let mut keys = HashMap::new();
        let mut infos = Vec::new();
        // Labels as the devices know them, for ListKeys.
        let labels: HashMap<_, _> = providers
            .values()
            .filter_map(|p| p.list().ok())
            .flatten()
            .map(|info| (info.public_key, info.label))
            .collect();
        for k in &config.keys {
            let provider = providers
                .get(&k.backend)
                .ok_or_else(|| format!("key {}: no backend {:?}", k.public_key, k.backend))?;
            let backend = provider
                .open(&k.public_key)
                .map_err(|e| format!("key {} in backend {:?}: {e}", k.public_key, k.backend))?;
            let chain_ids: Vec<_> = k.chains.iter().filter_map(|n| config.chain_id(n)).collect();
            infos.push(grpc::KeyInfo {
                public_key: k.public_key.to_string(),
                legacy_public_key: k.public_key.to_legacy_string().unwrap_or_default(),
                label: labels.get(&k.public_key).cloned().unwrap_or_default(),
                backend: provider.kind().to_string(),
                chain_ids: chain_ids.iter().map(|c| c.0.to_vec()).collect(),
                blind_digest: k.blind_digest,
                ..Default::default()
            });
            let entry = KeyEntry {
                backend,
                chains: chain_ids,
                blind_digest: k.blind_digest,
                retry: k.same_height_retry,
                sign_time: Default::default(),
            };
            if k.blind_digest {
                self_test(&entry, &k.public_key)?;
            }
            keys.insert(k.public_key, entry);
        }
        let version = format!(
            "config:{}",
            &oryx_proto::antelope::Checksum256::hash(&config_bytes).to_string()[..16]
        );
        let (authorizer, policy_engine): (Arc<dyn Authorizer>, Option<Arc<PolicyAuthorizer>>) =
            match &config.policy {
                Some(path) => {
                    let now = crate::clock::now_secs();
                    // Spends live beside the watermarks, under the same directory lock.
                    let engine = Arc::new(
                        PolicyAuthorizer::new(
                            load_policy(path)?,
                            config.keys.iter().map(|k| k.public_key).collect(),
                        )
                        .with_journal(&config.watermarks.dir.join("spend.jsonl"), now)?,
                    );
                    tracing::info!(path = %path.display(), version = %engine.version(), "policy loaded");
                    (engine.clone(), Some(engine))
                }
                None => (
                    Arc::new(AllowList::new(config.allow.clone(), version)),
                    None,
                ),
            };
        // Requests waiting for approvals live beside the watermarks, under the directory lock.
        let approvals = match &config.policy {
            Some(_) => Some(Arc::new(
                crate::approvals::ApprovalStore::open(config.watermarks.dir.join("approvals"))
                    .map_err(|e| e.to_string())?,
            )),
            None => None,
        };
        let metrics = Arc::new(Metrics::default());
        let pipeline = Arc::new(Pipeline {
            keys,
            chains,
            watermarks: store.clone(),
            audit: audit.clone(),
            authz: authorizer.clone(),
            metrics: metrics.clone(),
            approvals,
            admins: config.admins.clone(),
        });
        let ready: ReadyCheck = {
            let providers = providers.clone();
            let store = store.clone();
            let audit = audit.clone();
            Arc::new(move || {
                let mut problems = Vec::new();
                for (name, p) in &providers {
                    if let Err(e) = p.health() {
                        problems.push(format!("backend {name}: {e}"));
                    }
                }
                if let Err(e) = store.health() {
                    problems.push(format!("watermark store: {e}"));
                }
                if let Err(e) = audit.health() {
                    problems.push(format!("audit log: {e}"));
                }
                problems
            })
        };
        let tls = TlsFiles {
            ca_pem: read(&config.server.ca_cert)?,
            cert_pem: read(&config.server.cert)?,
            key_pem: read(&config.server.key)?,
        };
        let service = SignerService::new(pipeline, savanna, infos, ready.clone());

        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("tokio runtime: {e}"))?;
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind(config.server.listen)
                .await
                .map_err(|e| format!("listen on {}: {e}", config.server.listen))?;
            let addr = listener.local_addr().map_err(|e| e.to_string())?;
            if let Some(o) = &config.observability {
                let ml = tokio::net::TcpListener::bind(o.listen)
                    .await
                    .map_err(|e| format!("listen on {}: {e}", o.listen))?;
                println!("metrics on {}", ml.local_addr().map_err(|e| e.to_string())?);
                tokio::spawn(crate::metrics::serve(ml, metrics, ready));
            }
            if let (Some(engine), Some(path)) = (policy_engine, config.policy.clone()) {
                tokio::spawn(reload_on_sighup(engine, path));
            }
            println!("listening on {addr}");
            tracing::info!(%addr, keys = config.keys.len(), "oryx-signer serving over mTLS");
            crate::server::serve(listener, tls, service, shutdown_signal()).await
        })?;
        Ok(())
    }
}

/// Reads and validates a policy file; the error names the line.
fn load_policy(path: &std::path::Path) -> Result<oryx_policy::Policy, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    oryx_policy::Policy::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// On SIGHUP, reloads the policy; an unreadable or invalid file keeps the policy in force.
async fn reload_on_sighup(engine: Arc<PolicyAuthorizer>, path: std::path::PathBuf) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        return;
    };
    while hup.recv().await.is_some() {
        match load_policy(&path) {
            Ok(policy) => {
                let version = policy.version().to_string();
                engine.replace(policy);
                tracing::info!(%version, "policy reloaded");
            }
            Err(e) => {
                tracing::warn!(error = %e, kept = %engine.version(), "policy reload refused: keeping the policy in force")
            }
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => std::future::pending::<()>().await,
    }
    tracing::info!("shutting down");
}

/// Self-test signatures per blind-digest key at startup.
const SELF_TEST_SIGNATURES: usize = 3;

/// Signs a probe digest with a key nodeos will use through the bridge, before serving: proves
/// the backend holds the configured key (a signature that recovers to another key stops the
/// start) and measures its signing time, so a node can warn before nodeos's first block when
/// the HSM is slower than nodeos's timeout. The probe digest is domain-separated
/// (sha256 of "oryx signer self-test v1", the key and the time), so it can never be a block id
/// or a transaction digest. An unreachable HSM is only a warning: requests fail closed later.
fn self_test(entry: &KeyEntry, key: &oryx_proto::antelope::PublicKey) -> Result<(), String> {
    use oryx_proto::antelope::Checksum256;
    let mut preimage = b"oryx signer self-test v1\0".to_vec();
    preimage.extend_from_slice(key.to_string().as_bytes());
    preimage.extend_from_slice(&crate::clock::now_secs().0.to_le_bytes());
    let digest = Checksum256::hash(&preimage);
    for _ in 0..SELF_TEST_SIGNATURES {
        match entry.sign(&digest, SignOptions::default()) {
            Ok(_) => {}
            Err(crate::signing::SignError::DoesNotVerify { .. }) => {
                return Err(format!(
                    "key {key}: its backend signs with a different key: check the key's backend and label in the config"
                ));
            }
            Err(e) => {
                tracing::warn!(%key, "self-test signature failed: {e}; requests for this key will be refused until the backend recovers");
                return Ok(());
            }
        }
    }
    if let Some(q) = entry.sign_time.quantiles() {
        tracing::info!(%key, p50_ms = q.p50.as_secs_f64() * 1e3, max_ms = q.p99.as_secs_f64() * 1e3, "self-test: key signs");
    }
    Ok(())
}

//! `oryx-signer start`: run the daemon.
//!
//! Refuses to start on anything doubtful: an invalid config, a backend that does not open, a key
//! the backend does not hold, a damaged watermark log, audit log or key registry, or another
//! signer already using the same watermark directory. Prints `listening on ADDR` (and `metrics on ADDR`) on stdout
//! once it serves, and stops cleanly on SIGTERM or SIGINT.

use crate::config::load_policy;
use std::collections::HashMap;
use std::sync::Arc;

use clap::Args;

use crate::audit::AuditLog;
use crate::authz::{AllowList, Authorizer, PolicyAuthorizer};
use crate::commands::ConfigArg;
use crate::metrics::{Metrics, ReadyCheck};
use crate::pipeline::Pipeline;
use crate::server::{SignerService, TlsFiles, TlsState};
use crate::signing::SignOptions;
use crate::watermark::WatermarkStore;

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
    pub fn run(self) -> Result<(), crate::cli_error::CliError> {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "info".into()),
            )
            .with_ansi(false)
            .with_writer(|| oryx_proto::process::LogStderr)
            .try_init();
        let config = self.config.load()?;
        let config_bytes = read(&self.config.config)?;
        // Before any secret is read.
        let protection = crate::secret::protect_process_memory(config.lock_memory);
        match &protection.locked {
            Ok(()) => tracing::info!("memory locked: secrets are never swapped out"),
            Err(why) => {
                tracing::warn!("memory NOT locked, secrets could be swapped to disk: {why}")
            }
        }
        if let Err(why) = &protection.undumpable {
            tracing::warn!("the process is still dumpable (core files could hold secrets): {why}");
        }

        // The store takes the directory's exclusive lock and holds it for as long as anything
        // (including a signing task a client abandoned) still holds the store.
        let store: Arc<dyn WatermarkStore> =
            crate::watermark::open(&config.watermarks, crate::watermark::Access::Serve)
                .map_err(|e| e.to_string())?;
        if let Some(parent) = config.audit.path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        let replica = config.watermarks.etcd.as_ref().map(|e| e.replica.clone());
        let audit = Arc::new(
            AuditLog::open(&config.audit.path)
                .map_err(|e| e.to_string())?
                .with_replica(replica)
                .with_refusal_limit(config.audit.refusals),
        );
        let providers = crate::providers::open_all(&config)?;

        let mut chains = HashMap::new();
        let mut savanna = Vec::new();
        for c in &config.chains {
            let id = config
                .chain_id(&c.name)
                .ok_or_else(|| format!("chain {}: bad chain id", c.name))?;
            chains.insert(id, SignOptions::for_chain(c));
            if c.savanna {
                savanna.push(id);
            }
        }
        let registry = match &config.registry {
            Some(r) => Some(Arc::new(
                crate::registry::Registry::open(&r.path).map_err(|e| e.to_string())?,
            )),
            None => None,
        };
        let entries = crate::lifecycle::load_keys(&config, &providers, registry.as_deref())?;
        for entry in &entries {
            // Keys nodeos uses through the bridge, and the transcript key, prove themselves now.
            let audit_key = config.audit.signing_key.as_ref() == Some(entry.public_key());
            if !entry.is_retired() && (entry.blind_digest || audit_key) {
                crate::keyset::self_test(entry)?;
            }
        }
        let held_keys: Vec<_> = entries
            .iter()
            .filter(|e| !e.is_retired())
            .map(|e| *e.public_key())
            .collect();
        let key_count = held_keys.len();
        let keys = crate::keyset::KeySet::new(entries);
        let version = format!(
            "config:{}",
            &oryx_proto::antelope::Checksum256::hash(&config_bytes).to_string()[..16]
        );
        let (authorizer, policy_engine): (Arc<dyn Authorizer>, Option<Arc<PolicyAuthorizer>>) =
            match &config.policy {
                Some(path) => {
                    let now = crate::clock::now_secs();
                    // Spends live beside the watermarks, under the same directory lock.
                    let policy = load_policy(path, &config.chain_names())?;
                    for w in config.blind_keys_with_account_use(Some(&policy)) {
                        tracing::warn!("{w}");
                    }
                    let engine = Arc::new(
                        PolicyAuthorizer::new(policy, held_keys)
                            .with_journal(&config.watermarks.dir.join("spend.jsonl"), now)?,
                    );
                    tracing::info!(path = %path.display(), version = %engine.version(), "policy loaded");
                    (engine.clone(), Some(engine))
                }
                None => {
                    for w in config.blind_keys_with_account_use(None) {
                        tracing::warn!("{w}");
                    }
                    (
                        Arc::new(AllowList::new(config.allow.clone(), version)),
                        None,
                    )
                }
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
            scopes: Arc::new(
                crate::watermark::Scopes::new(&config.producer_groups()?)
                    .with_unbounded_blind_start(&config.unbounded_blind_start()),
            ),
            audit: audit.clone(),
            authz: authorizer.clone(),
            metrics: metrics.clone(),
            approvals,
            admins: crate::refusal::Admins::new(config.admins.clone())
                .with_reviewers(config.reviewers.clone()),
            write_ahead: config.watermarks.write_ahead,
            withheld: Default::default(),
            in_flight: Default::default(),
        });
        // Before the first request: watermarks raised from the log's write-ahead entries, and
        // the ones a crash left without an outcome closed (`crate::wal`).
        let wal_dir = config.watermarks.dir.clone();
        let found = crate::wal::recover(&wal_dir, &audit, store.as_ref())?;
        if found.raised > 0 || found.unreleased > 0 {
            tracing::warn!(
                scanned = found.scanned,
                raised = found.raised,
                unreleased = found.unreleased,
                "write-ahead recovery"
            );
        }
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
        crate::secret::private_file_mode(&config.server.key).map_err(|mode| {
            format!(
                "TLS key {} is open to other users (mode {mode:03o}): `chmod 600` it",
                config.server.key.display()
            )
        })?;
        if config.server.crl.is_none() {
            tracing::warn!(
                "no [server] crl: client certificates cannot be revoked (oryx-signer certs revoke \
                 writes the CA's crl.pem; set crl to where you copy it)"
            );
        }
        if let Some(stray) = config
            .server
            .ca_cert
            .parent()
            .map(|d| d.join("ca.key"))
            .filter(|k| k.exists())
        {
            tracing::warn!(
                path = %stray.display(),
                "the CA key is beside the running signer: move it offline (an older init put it \
                 there; `oryx-signer certs --ca DIR` works wherever it goes)"
            );
        }
        let tls = Arc::new(TlsState::load(
            TlsFiles {
                ca_pem: read(&config.server.ca_cert)?,
                cert_pem: read(&config.server.cert)?,
                key_pem: read(&config.server.key)?,
            },
            config.server.crl.clone(),
        )?);
        let lifecycle = Arc::new(crate::lifecycle::Lifecycle::new(
            pipeline.clone(),
            providers.clone(),
            registry,
            &config,
        ));
        let wal_pipeline = pipeline.clone();
        let service = SignerService::new(pipeline, savanna, lifecycle, ready.clone());

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
            let policy = policy_engine.zip(config.policy.clone());
            tokio::spawn(reload_on_sighup(policy, tls.clone(), config.chain_names()));
            tokio::spawn(flush_refusals(audit.clone()));
            tokio::spawn(checkpoints(wal_dir.clone(), wal_pipeline.clone()));
            println!("listening on {addr}");
            tracing::info!(%addr, keys = key_count, "oryx-signer serving over mTLS");
            let served = crate::server::serve(listener, tls, service, shutdown_signal()).await;
            // Refusals still held go on record before the process ends.
            if let Err(e) = audit.flush_refusals() {
                tracing::error!(error = %e, "audit log: held refusals could not be written at shutdown");
            }
            if let Err(e) = wal_pipeline.checkpoint(&wal_dir) {
                tracing::error!(error = %e, "write-ahead checkpoint at shutdown failed: the next start reads the log from the last one");
            }
            served
        })?;
        Ok(())
    }
}

/// How often refusals held over their principal's rate are written as summary entries.
const REFUSAL_FLUSH: std::time::Duration = std::time::Duration::from_secs(10);

/// Writes held refusals every [`REFUSAL_FLUSH`] (see `audit::coalesce`).
async fn flush_refusals(audit: Arc<AuditLog>) {
    let mut tick = tokio::time::interval(REFUSAL_FLUSH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let audit = audit.clone();
        match tokio::task::spawn_blocking(move || audit.flush_refusals()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "audit log: held refusals not written yet"),
            Err(e) => tracing::error!(error = %e, "audit log: the refusal flush failed"),
        }
    }
}

/// Write-ahead checkpoints every [`crate::wal::CHECKPOINT_EVERY`]: syncs outcomes written
/// since, and the watermark files, and moves the point start-up recovery reads from.
async fn checkpoints(dir: std::path::PathBuf, pipeline: Arc<Pipeline>) {
    let mut tick = tokio::time::interval(crate::wal::CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = None;
    loop {
        tick.tick().await;
        let (dir, pipeline) = (dir.clone(), pipeline.clone());
        // Nothing appended since the last one: nothing to do.
        let next = pipeline.audit.next_seq();
        if last == Some(next) {
            continue;
        }
        match tokio::task::spawn_blocking(move || pipeline.checkpoint(&dir)).await {
            Ok(Ok(Some(cp))) => last = Some(cp.seq),
            // A write-ahead entry below was still waiting for its outcome: next tick.
            Ok(Ok(None)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "write-ahead checkpoint failed; retried"),
            Err(e) => tracing::error!(error = %e, "write-ahead checkpoint task failed"),
        }
    }
}

/// On SIGHUP, reloads the policy (with a policy file) and the certificate revocation list; an
/// unreadable or invalid file keeps the one in force.
async fn reload_on_sighup(
    policy: Option<(Arc<PolicyAuthorizer>, std::path::PathBuf)>,
    tls: Arc<TlsState>,
    chains: Vec<(String, oryx_proto::antelope::Checksum256)>,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        return;
    };
    while hup.recv().await.is_some() {
        if let Some((engine, path)) = &policy {
            match load_policy(path, &chains) {
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
        match tls.reload() {
            Ok(revoked) => tracing::info!(revoked, "certificate revocation list reloaded"),
            Err(e) => {
                tracing::warn!(error = %e, "revocation list reload refused: keeping the list in force")
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

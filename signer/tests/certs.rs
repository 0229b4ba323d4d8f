//! Client certificates as an operator lives them: `init` keeps the CA apart and issues
//! certificates that expire; `certs revoke` + SIGHUP shuts out a principal — at the handshake for
//! new connections and at the next request for one opened before — while everyone else goes
//! on; a bad revocation list keeps the one in force; `certs issue` adds a principal without a
//! restart.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use oryx_proto::grpc;
use oryx_tests::harness::*;

fn hup(signer: &Signer) {
    let ok = std::process::Command::new("kill")
        .args(["-HUP", &signer.child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

fn install_crl(dir: &Path) {
    std::fs::copy(ca_dir(dir).join("crl.pem"), dir.join("tls/crl.pem")).unwrap();
}

/// The code the signer answers `ListKeys` with for this connection.
async fn answer(
    c: &mut grpc::signer_client::SignerClient<tonic::transport::Channel>,
) -> tonic::Code {
    match c.list_keys(grpc::ListKeysRequest {}).await {
        Ok(_) => tonic::Code::Ok,
        Err(e) => e.code(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_certificates_are_shut_out_at_once_and_new_ones_let_in() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path(), true);
    let d = dir.path();
    let ca = ca_dir(d);
    // The CA key is not in the signer's TLS directory; certificates expire in a year.
    assert!(ca.join("ca.key").exists());
    assert!(!d.join("tls/ca.key").exists());
    let list = run(&["certs", "list", "--ca", ca.to_str().unwrap()], &[]);
    assert!(
        list.contains("intruder") && list.contains("node1"),
        "{list}"
    );
    assert_eq!(list.matches(" valid").count(), 3, "{list}");

    let key = first_key(d);
    let signer = Signer::start(d, &[]);
    let mut node = signer.client("node1").await;
    let mut open = signer.client("intruder").await;
    // Authenticated (refused for rights, not for who it is).
    assert_eq!(answer(&mut open).await, tonic::Code::PermissionDenied);

    let out = run(
        &["certs", "revoke", "intruder", "--ca", ca.to_str().unwrap()],
        &[],
    );
    assert!(out.contains("revoked intruder"), "{out}");
    install_crl(d);
    hup(&signer);
    // The connection opened before the reload is refused at its next request.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let code = answer(&mut open).await;
        if code == tonic::Code::Unauthenticated {
            break;
        }
        assert!(Instant::now() < deadline, "still {code:?} after the reload");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A new connection fails the handshake.
    let tls = signer.tls("intruder");
    match oryx_proto::client::connect(&signer.addr, &tls).await {
        Err(_) => {}
        Ok(mut c) => assert!(c.list_keys(grpc::ListKeysRequest {}).await.is_err()),
    }
    // Everyone else goes on, on the same and on new connections.
    let n = now_slot();
    sign_block(&mut node, &key, &savanna(n, n, 0))
        .await
        .unwrap();
    let mut again = signer.client("node1").await;
    sign_block(&mut again, &key, &savanna(n + 1, n + 1, 0))
        .await
        .unwrap();

    // A list that is not the CA's keeps the one in force.
    std::fs::write(d.join("tls/crl.pem"), b"not a list").unwrap();
    hup(&signer);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(answer(&mut open).await, tonic::Code::Unauthenticated);
    sign_block(&mut node, &key, &savanna(n + 2, n + 2, 0))
        .await
        .unwrap();

    // A new principal, issued offline and let in without a restart.
    let out = run(
        &[
            "certs",
            "issue",
            "carol",
            "--ca",
            ca.to_str().unwrap(),
            "--days",
            "30",
            "--out",
            d.join("tls").to_str().unwrap(),
        ],
        &[],
    );
    assert!(out.contains("issued client certificate carol"), "{out}");
    let mut carol = signer.client("carol").await;
    assert_eq!(answer(&mut carol).await, tonic::Code::PermissionDenied);
    let list = run(&["certs", "list", "--ca", ca.to_str().unwrap()], &[]);
    assert!(list.contains("revoked 20"), "{list}");
    assert!(list.contains("carol"), "{list}");
}

#[test]
fn certs_refuse_what_an_operator_gets_wrong() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path(), false);
    let ca = ca_dir(dir.path());
    let ca_s = ca.to_str().unwrap();

    let out = dir.path().join("tls");
    let out_s = out.to_str().unwrap();
    // Never over an existing certificate.
    let e = run_refused(&["certs", "issue", "node1", "--ca", ca_s, "--out", out_s]);
    assert!(e.contains("exists"), "{e}");
    let e = run_refused(&["certs", "issue", "x y", "--ca", ca_s, "--out", out_s]);
    assert!(e.contains("DNS-style"), "{e}");
    let e = run_refused(&[
        "certs", "issue", "z", "--ca", ca_s, "--days", "0", "--out", out_s,
    ]);
    assert!(e.contains("1 to 3650 days"), "{e}");
    let e = run_refused(&["certs", "revoke", "nobody", "--ca", ca_s]);
    assert!(e.contains("no certificate named"), "{e}");
    let e = run_refused(&["certs", "list", "--ca", out_s]);
    assert!(e.contains("ca.key"), "{e}");
    // init never reuses a CA directory.
    let again = dir.path().join("second");
    let e = run_refused(&["init", again.to_str().unwrap(), "--ca-dir", ca_s]);
    assert!(e.contains("not empty"), "{e}");
    assert!(!again.exists(), "a refused init leaves nothing behind");
    // Nor puts the CA where the signer would serve or overwrite it.
    for inside in ["", "tls", "secrets/ca"] {
        let e = run_refused(&[
            "init",
            again.to_str().unwrap(),
            "--ca-dir",
            again.join(inside).to_str().unwrap(),
        ]);
        assert!(e.contains("apart from the signer"), "{inside}: {e}");
    }
}

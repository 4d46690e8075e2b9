//! `NatsServer::start_secured`: servers that require credentials and/or TLS, checked through
//! their INFO greeting and, for the certificates, with `openssl verify`.

use std::process::Command;

use tidemark_testkit::{nats_info, NatsAuth, NatsSecurity, NatsServer};

#[tokio::test]
async fn a_user_password_server_announces_that_it_requires_auth() {
    let security = NatsSecurity::user_password("relay", "pa\"ss");
    let mut nats = NatsServer::start_secured(security.clone()).await;
    let info = nats_info(nats.port()).await.unwrap();
    assert!(info.contains("\"auth_required\":true"), "{info}");
    assert!(info.contains("\"jetstream\":true"), "{info}");
    assert!(!info.contains("tls_required"), "{info}");
    assert!(nats.tls_files().is_none());
    assert_eq!(nats.security(), &security);
    assert!(matches!(nats.security().auth(), NatsAuth::UserPassword { .. }));

    nats.restart().await;
    let info = nats_info(nats.port()).await.unwrap();
    assert!(info.contains("\"auth_required\":true"), "a restart keeps the configuration: {info}");
}

#[tokio::test]
async fn a_plain_server_requires_nothing() {
    let nats = NatsServer::start().await;
    let info = nats_info(nats.port()).await.unwrap();
    assert!(!info.contains("auth_required"), "{info}");
    assert!(!info.contains("tls_required"), "{info}");
}

#[tokio::test]
async fn a_tls_server_has_certificates_its_ca_verifies() {
    let nats = NatsServer::start_secured(NatsSecurity::token("t0ken").mutual_tls()).await;
    let info = nats_info(nats.port()).await.unwrap();
    assert!(info.contains("\"tls_required\":true"), "{info}");
    assert!(info.contains("\"tls_verify\":true"), "{info}");
    assert!(info.contains("\"auth_required\":true"), "{info}");
    let files = nats.tls_files().expect("TLS files");
    for cert in [files.server_cert(), files.client_cert()] {
        let verified = Command::new("openssl").arg("verify").arg("-CAfile").arg(files.ca()).arg(cert).output().unwrap();
        assert!(verified.status.success(), "{}", String::from_utf8_lossy(&verified.stderr));
    }
    // A certificate that the CA did not sign fails the same check (so the check can fail).
    let other = NatsServer::start_secured(NatsSecurity::default().tls()).await;
    let foreign = other.tls_files().expect("TLS files").server_cert();
    let verified = Command::new("openssl").arg("verify").arg("-CAfile").arg(files.ca()).arg(foreign).output().unwrap();
    assert!(!verified.status.success(), "another CA's certificate verified");
}

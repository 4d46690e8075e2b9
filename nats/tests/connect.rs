//! `NatsConnect` against nats-servers that require a user and password, a token, TLS, or
//! client certificates: the right options connect, wrong or missing ones fail at once with
//! a typed error, and no secret shows in `Debug`, `Display` or error messages.

use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use tidemark_nats::{NatsConnect, NatsConnectError};
use tidemark_testkit::{free_port, unique_name, NatsSecurity, NatsServer};

/// Failures against a live server must come back well before this (no hang, no retry loop).
const QUICK: Duration = Duration::from_secs(3);

/// Connects and proves the connection works: a message published on it comes back to a
/// subscription of the same connection, through the server.
async fn works(options: &NatsConnect) {
    let client = options.connect().await.unwrap_or_else(|e| panic!("{options} did not connect: {e}"));
    let subject = unique_name("connect").to_lowercase();
    let mut subscriber = client.subscribe(subject.clone()).await.expect("subscribe");
    client.publish(subject, "ping".into()).await.expect("publish");
    let message = tokio::time::timeout(QUICK, subscriber.next()).await.expect("the message came back in time");
    assert_eq!(message.expect("message").payload.as_ref(), b"ping");
}

/// Connects, expecting a failure within [`QUICK`]; returns it.
async fn fails(options: &NatsConnect) -> NatsConnectError {
    let started = Instant::now();
    let error = options.connect().await.err().unwrap_or_else(|| panic!("{options} connected"));
    assert!(started.elapsed() < QUICK, "{options} took {:?} to fail: {error}", started.elapsed());
    error
}

#[tokio::test]
async fn user_and_password_connect_and_wrong_or_missing_ones_are_refused() {
    let nats = NatsServer::start_secured(NatsSecurity::user_password("relay", "pw-correct-7f3a")).await;
    works(&NatsConnect::new(&nats.url()).user_password("relay", "pw-correct-7f3a")).await;

    let wrong = NatsConnect::new(&nats.url()).user_password("relay", "pw-wrong-91c2");
    let error = fails(&wrong).await;
    assert!(matches!(error, NatsConnectError::Unauthorized { .. }), "{error:?}");
    assert!(!error.is_retryable());
    assert!(!format!("{error} {error:?}").contains("pw-wrong-91c2"), "the password shows in {error:?}");

    let error = fails(&NatsConnect::new(&nats.url())).await;
    assert!(matches!(error, NatsConnectError::Unauthorized { .. }), "no credentials: {error:?}");
    let error = fails(&NatsConnect::new(&nats.url()).token("pw-correct-7f3a")).await;
    assert!(matches!(error, NatsConnectError::Unauthorized { .. }), "a token instead: {error:?}");
}

#[tokio::test]
async fn a_token_connects_and_a_wrong_one_is_refused() {
    let nats = NatsServer::start_secured(NatsSecurity::token("tok-correct-5d1e")).await;
    works(&NatsConnect::new(&nats.url()).token("tok-correct-5d1e")).await;
    let error = fails(&NatsConnect::new(&nats.url()).token("tok-wrong-0b7c")).await;
    assert!(matches!(error, NatsConnectError::Unauthorized { .. }), "{error:?}");
    assert!(!format!("{error} {error:?}").contains("tok-wrong"), "the token shows in {error:?}");
}

#[tokio::test]
async fn tls_is_verified_with_the_ca_and_refused_without_it() {
    let nats = NatsServer::start_secured(NatsSecurity::user_password("relay", "pw-tls-33aa").tls()).await;
    let ca = nats.tls_files().expect("TLS").ca().to_owned();
    let with_ca = NatsConnect::new(&nats.url()).user_password("relay", "pw-tls-33aa").ca_file(&ca);
    works(&with_ca).await;
    works(&with_ca.clone().require_tls(true)).await;
    let tls_url = format!("tls://127.0.0.1:{}", nats.port());
    works(&NatsConnect::new(&tls_url).user_password("relay", "pw-tls-33aa").ca_file(&ca)).await;

    // The system's roots do not include the throwaway CA: the certificate is refused.
    let error = fails(&NatsConnect::new(&nats.url()).user_password("relay", "pw-tls-33aa")).await;
    assert!(matches!(error, NatsConnectError::Tls { .. }), "{error:?}");
    assert!(!error.is_retryable());

    // Another CA's certificate does not do either.
    let other = NatsServer::start_secured(NatsSecurity::default().tls()).await;
    let other_ca = other.tls_files().expect("TLS").ca().to_owned();
    let error = fails(&NatsConnect::new(&nats.url()).user_password("relay", "pw-tls-33aa").ca_file(other_ca)).await;
    assert!(matches!(error, NatsConnectError::Tls { .. }), "{error:?}");

    // Correct TLS, wrong password: still refused as unauthorized.
    let error = fails(&NatsConnect::new(&nats.url()).user_password("relay", "nope").ca_file(&ca)).await;
    assert!(matches!(error, NatsConnectError::Unauthorized { .. }), "{error:?}");
}

#[tokio::test]
async fn requiring_tls_refuses_a_server_without_it() {
    let nats = NatsServer::start().await;
    works(&NatsConnect::new(&nats.url())).await;
    let error = fails(&NatsConnect::new(&nats.url()).require_tls(true)).await;
    assert!(matches!(error, NatsConnectError::Tls { .. }), "{error:?}");
}

#[tokio::test]
async fn a_server_verifying_clients_needs_the_client_certificate() {
    let nats = NatsServer::start_secured(NatsSecurity::token("tok-mtls-8e2f").mutual_tls()).await;
    let files = nats.tls_files().expect("TLS");
    let base = NatsConnect::new(&nats.url()).token("tok-mtls-8e2f").ca_file(files.ca());
    works(&base.clone().client_cert(files.client_cert(), files.client_key())).await;
    let error = fails(&base).await;
    assert!(matches!(error, NatsConnectError::Tls { .. }), "not a credentials problem: {error:?}");
}

#[tokio::test]
async fn the_first_reachable_server_of_a_list_is_used() {
    let nats = NatsServer::start_secured(NatsSecurity::token("tok-list-c4d1")).await;
    let list = format!("nats://127.0.0.1:{} , {}", free_port(), nats.url());
    let options = NatsConnect::new(&list).token("tok-list-c4d1");
    assert_eq!(options.servers.len(), 2);
    works(&options).await;
}

#[tokio::test]
async fn an_unreachable_server_fails_as_retryable_within_the_timeout() {
    let url = format!("nats://127.0.0.1:{}", free_port());
    let error = fails(&NatsConnect::new(&url).connection_timeout(Duration::from_secs(1))).await;
    assert!(matches!(error, NatsConnectError::Unreachable { .. }), "{error:?}");
    assert!(error.is_retryable());
}

#[tokio::test]
async fn invalid_options_are_refused_before_connecting() {
    let error = NatsConnect::new(" , ").connect().await.unwrap_err();
    assert!(matches!(error, NatsConnectError::NoServers), "{error:?}");
    let error = NatsConnect::new("http://u:pw-in-url-1@127.0.0.1:4222").connect().await.unwrap_err();
    assert!(matches!(error, NatsConnectError::InvalidServer { .. }), "{error:?}");
    assert!(!format!("{error} {error:?}").contains("pw-in-url-1"), "{error:?}");
    let both = NatsConnect::new("nats://127.0.0.1:4222").token("t").user_password("u", "p");
    assert!(matches!(both.connect().await.unwrap_err(), NatsConnectError::Conflict(_)));
    let missing = NatsConnect::new("nats://127.0.0.1:4222").ca_file("/nonexistent/ca.pem");
    let error = missing.connect().await.unwrap_err();
    assert!(matches!(error, NatsConnectError::File { what: "CA file", .. }), "{error:?}");
    let creds = NatsConnect::new("nats://127.0.0.1:4222").credentials_file("/nonexistent/x.creds");
    assert!(matches!(creds.connect().await.unwrap_err(), NatsConnectError::File { .. }));
}

#[test]
fn debug_and_display_never_show_a_secret() {
    let options = NatsConnect::new("nats://admin:pw-url-2b9c@10.0.0.1:4222,nats://10.0.0.2:4222")
        .user_password("relay", "pw-field-6c0d")
        .ca_file("/etc/nats/ca.pem")
        .name("orders");
    let token = NatsConnect::new("nats://tok-url-4a7e@10.0.0.1").token("tok-field-1f5b");
    for shown in [format!("{options:?}"), options.to_string(), format!("{token:?}"), token.to_string()] {
        for secret in ["pw-url-2b9c", "pw-field-6c0d", "tok-url-4a7e", "tok-field-1f5b"] {
            assert!(!shown.contains(secret), "{secret} shows in {shown}");
        }
    }
    // What is not secret still shows.
    assert!(options.to_string().contains("admin:***@10.0.0.1:4222"), "{options}");
    assert!(options.to_string().contains("user relay with password"), "{options}");
    assert!(format!("{options:?}").contains("/etc/nats/ca.pem"), "{options:?}");
    assert!(options.has_password() && token.has_token());
}

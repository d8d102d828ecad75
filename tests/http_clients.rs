//! The process's HTTP clients: the extra CA bundle (the publisher's IGC-Santé chain) is
//! trusted for downloads only. A local TLS server whose chain only that bundle vouches for
//! stands in for the publisher and for a key server: the download client reaches it, the
//! client of every other call (Entra's keys, webhooks) refuses it, and so does Entra.

mod common;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use annuaire::download::{DownloadSettings, Downloader};
use annuaire::http::entra::EntraSettings;
use annuaire::http::{HookSettings, UnknownSubject};
use annuaire::jobs::RunnerSettings;
use annuaire::server::ServerConfig;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rustls::pki_types::pem::PemObject;
use serde_json::{Value, json};

use common::published_db;
use common::server::TestServer;

fn fixture(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path)
}

fn with_bundle() -> Downloader {
    Downloader::new(DownloadSettings {
        extra_ca_bundle: Some(fixture("tls/ca.pem")),
        ..DownloadSettings::default()
    })
    .unwrap()
}

/// What a TLS server saw: connections, and requests answered (a client that refuses the
/// chain ends the handshake before any).
#[derive(Default)]
struct Seen {
    connections: AtomicUsize,
    answered: AtomicUsize,
}

impl Seen {
    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    fn answered(&self) -> usize {
        self.answered.load(Ordering::SeqCst)
    }
}

/// A TLS server on `127.0.0.1:0` whose certificate only `tls/ca.pem` vouches for: answers
/// every request with `body` as JSON.
fn tls_server(body: Vec<u8>) -> (u16, Arc<Seen>) {
    let chain: Vec<_> = rustls::pki_types::CertificateDer::pem_file_iter(fixture("tls/server.pem"))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_file(fixture("tls/server.key")).unwrap();
    annuaire::install_crypto_provider();
    let config = Arc::new(
        rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap(),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Seen::default());
    let counter = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            counter.connections.fetch_add(1, Ordering::SeqCst);
            let connection = rustls::ServerConnection::new(Arc::clone(&config)).unwrap();
            let mut tls = rustls::StreamOwned::new(connection, stream);
            if answer(&mut tls, &body).is_ok() {
                counter.answered.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    (port, seen)
}

/// Reads one request's head and answers it; an error when the handshake or the read fails.
fn answer(tls: &mut impl ReadWrite, body: &[u8]) -> std::io::Result<()> {
    let mut request = Vec::new();
    let mut buffer = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        let read = tls.read(&mut buffer)?;
        if read == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        request.extend_from_slice(&buffer[..read]);
    }
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes())?;
    tls.write_all(body)?;
    tls.flush()
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

#[tokio::test]
async fn the_ca_bundle_is_trusted_for_downloads_only() {
    let (port, seen) = tls_server(b"{}".to_vec());
    let url = format!("https://localhost:{port}/extract.zip");
    let downloader = with_bundle();

    // The download client trusts the bundle: the publisher's chain is reached.
    downloader.probe(&url).await.unwrap();
    assert_eq!(seen.answered(), 1);

    // The other calls' client does not: the same server is refused at the handshake.
    let refused = downloader.plain_client().get(&url).send().await;
    let error = refused.expect_err("the plain client must not trust the extra CA bundle");
    assert!(error.is_connect(), "{error:?}");
    assert_eq!(seen.answered(), 1);

    // Without a bundle, the download client refuses it too: the chain needs the bundle.
    let plain = Downloader::new(DownloadSettings::default()).unwrap();
    assert!(plain.probe(&url).await.is_err());
    assert_eq!(seen.answered(), 1);
}

/// A CA bundle that cannot be read is an error when the clients are built, at start.
#[test]
fn an_unreadable_ca_bundle_is_an_error_at_start() {
    let missing = fixture("tls/no-such-bundle.pem");
    let error = Downloader::new(DownloadSettings {
        extra_ca_bundle: Some(missing.clone()),
        ..DownloadSettings::default()
    })
    .expect_err("a missing bundle must not build");
    assert!(
        error.to_string().starts_with(&format!(
            "download settings: cannot read the CA bundle {}",
            missing.display()
        )),
        "{error}"
    );
}

const TENANT: &str = "aaaabbbb-0000-cccc-1111-dddd2222eeee";
const AUDIENCE: &str = "00001111-aaaa-2222-bbbb-3333cccc4444";

/// Entra's keys come through the system roots: a key server that only the extra CA bundle
/// vouches for is not trusted, even when the process was given that bundle for downloads,
/// and Entra's callout signed with its key is refused.
#[tokio::test]
async fn entra_does_not_trust_the_ca_bundle() {
    let db = published_db("ps-libreacces").await;
    let jwk: Value = serde_json::from_slice(&std::fs::read(fixture("entra/entra-test-a.jwk.json")).unwrap()).unwrap();
    let (port, seen) = tls_server(serde_json::to_vec(&json!({"keys": [jwk]})).unwrap());
    let issuer = format!("https://login.microsoftonline.com/{TENANT}/v2.0");
    let hooks = HookSettings {
        unknown: UnknownSubject::Deny,
        entra: Some(EntraSettings {
            jwks_url: EntraSettings::check_jwks_url(&format!("https://localhost:{port}/discovery/v2.0/keys")).unwrap(),
            issuer: issuer.clone(),
            audiences: vec![AUDIENCE.to_owned()],
            subject_attribute: "onPremisesSamAccountName".to_owned(),
            mapping: None,
            refetch_after: Duration::ZERO,
            first_retry: Duration::from_millis(50),
        }),
        ..HookSettings::default()
    };
    let config = ServerConfig {
        runner: RunnerSettings::new(with_bundle()),
        ..ServerConfig::new(hooks).unwrap()
    };
    let server = TestServer::start_with(db.pool.clone(), config).await;

    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "aud": AUDIENCE, "iss": issuer, "iat": now - 10, "nbf": now - 10, "exp": now + 3600,
        "azp": annuaire::http::entra::token::EVENTS_SERVICE_APP_ID, "tid": TENANT, "ver": "2.0",
    });
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("entra-test-a".to_owned());
    let key = EncodingKey::from_rsa_pem(&std::fs::read(fixture("entra/entra-test-a.pem")).unwrap()).unwrap();
    let token = jsonwebtoken::encode(&header, &claims, &key).unwrap();
    let mut callout: Value = serde_json::from_slice(&std::fs::read(fixture("entra/callout.json")).unwrap()).unwrap();
    callout["data"]["authenticationContext"]["user"]["onPremisesSamAccountName"] = json!("810003456125");

    let reply = server
        .client
        .post(server.url("/v1/hooks/entra/token"))
        .bearer_auth(&token)
        .json(&callout)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 401, "{}", reply.text().await.unwrap());
    // Entra's keys were asked for (at start, and for the callout) and refused at the handshake.
    common::server::wait_for("a fetch of Entra's keys", Duration::from_secs(20), || async {
        seen.connections() >= 1
    })
    .await;
    assert_eq!(
        seen.answered(),
        0,
        "no key set may be fetched through the extra CA bundle"
    );
}

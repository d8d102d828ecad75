//! Nobody can fill the connection cap and lock the IdP out: a socket that sends nothing is
//! cut at the header timeout, an idle kept-alive connection makes room for a new one at
//! the cap, and one client address holds at most its share. Real server, real sockets.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use annuaire::http::{ConnectionLimits, HookSettings};
use annuaire::keys::{self, Scope};
use annuaire::server::ServerConfig;
use common::server::{TestServer, closed_within};
use common::{TestDb, published_db};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const CLAIMS_ID: &str = "810003456125";

/// Limits far apart, so that only the one under test can explain what a test sees.
fn limits() -> ConnectionLimits {
    ConnectionLimits {
        max_connections: 64,
        max_per_client: 0,
        header_read_timeout: Duration::from_secs(120),
        idle_timeout: Duration::from_secs(300),
        ..ConnectionLimits::default()
    }
}

/// The server, a claims key, and the database (keep it alive as long as the server).
async fn server(limits: ConnectionLimits) -> (TestServer, String, TestDb) {
    let db = published_db("ps-libreacces").await;
    let pool = db.pool.clone();
    let claims = keys::create(&pool, "idp", &[Scope::Claims]).await.expect("key").1;
    let config = ServerConfig {
        connections: limits,
        ..ServerConfig::new(HookSettings::default()).unwrap()
    };
    (TestServer::start_with(pool, config).await, claims, db)
}

fn address(server: &TestServer) -> SocketAddr {
    server
        .base
        .trim_start_matches("http://")
        .parse()
        .expect("server address")
}

/// Claims from 127.0.0.1 on a fresh connection: the status, or why none came in 10 s.
async fn claims_status(server: &TestServer, key: &str) -> Result<u16, String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    match client
        .get(server.url(&format!("/v1/claims/{CLAIMS_ID}")))
        .bearer_auth(key)
        .send()
        .await
    {
        Ok(response) => Ok(response.status().as_u16()),
        Err(error) => Err(error.to_string()),
    }
}

/// A connection from `from` (any loopback address) to the server.
async fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(format!("{from}:0").parse().expect("address"))
        .expect("bind");
    socket.connect(to).await.expect("connect")
}

/// One request on a kept-alive connection, its whole answer read: the connection is then
/// idle, with nothing in flight.
async fn one_request(stream: &mut TcpStream) {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .expect("request sent");
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    // /healthz answers a small body with a content-length: read until the head and body.
    while !is_whole_answer(&answer) {
        let n = stream.read(&mut buf).await.expect("answer read");
        assert!(n > 0, "connection closed before its answer");
        answer.extend_from_slice(&buf[..n]);
    }
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
}

fn is_whole_answer(answer: &[u8]) -> bool {
    let text = String::from_utf8_lossy(answer);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    let length = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())
                .flatten()
        })
        .expect("a content-length");
    body.len() >= length
}

/// `annuaire_connections_closed_total{reason}` from `/metrics`.
async fn closed_count(server: &TestServer, reason: &str) -> u64 {
    let prefix = format!("annuaire_connections_closed_total{{reason=\"{reason}\"}} ");
    let metrics = server.metrics().await;
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {prefix} in the metrics"))
        .parse()
        .expect("a count")
}

#[tokio::test]
async fn a_socket_that_sends_nothing_is_closed_at_the_header_timeout() {
    let (server, _, _db) = server(ConnectionLimits {
        header_read_timeout: Duration::from_millis(500),
        ..limits()
    })
    .await;
    let mut silent = TcpStream::connect(address(&server)).await.unwrap();
    // The idle timeout is 300 s: only a deadline counted from accept closes it this soon.
    assert!(
        closed_within(&mut silent, Duration::from_secs(20)).await,
        "a socket that never sent a byte was held past the header timeout"
    );
    assert_eq!(closed_count(&server, "no_request").await, 1);
    server.stop().await;
}

#[tokio::test]
async fn at_the_cap_an_idle_kept_alive_connection_makes_room_for_a_new_one() {
    let limits = limits();
    let (server, key, _db) = server(limits.clone()).await;
    let to = address(&server);
    let mut idle = Vec::new();
    for n in 0..limits.max_connections {
        let mut stream = TcpStream::connect(to).await.unwrap();
        // The last of these already finds the cap full (the test client holds one).
        tokio::time::timeout(Duration::from_secs(10), one_request(&mut stream))
            .await
            .unwrap_or_else(|_| panic!("connection {n} was not admitted at the cap"));
        idle.push(stream);
    }
    // The cap is full of idle kept-alive connections (and the test client's own): a new
    // client is still answered, at once rather than after an idle timeout of 300 s.
    assert_eq!(claims_status(&server, &key).await, Ok(200));
    // The connection idle the longest gave its place.
    assert!(
        closed_within(&mut idle[0], Duration::from_secs(10)).await,
        "the oldest idle connection is still open"
    );
    assert!(closed_count(&server, "evicted").await >= 1);
    // Those idle for less are kept while there is room.
    assert!(!closed_within(&mut idle[limits.max_connections - 1], Duration::from_millis(300)).await);
    server.stop().await;
}

#[tokio::test]
async fn one_client_address_holds_at_most_its_share_of_the_cap() {
    let limits = ConnectionLimits {
        max_per_client: 16,
        ..limits()
    };
    let (server, key, _db) = server(limits.clone()).await;
    let to = address(&server);
    // The flood comes from 127.0.0.2 and sends nothing; its share is held.
    let mut held = Vec::new();
    for _ in 0..limits.max_per_client {
        held.push(connect_from("127.0.0.2", to).await);
    }
    for attempt in 0..100 {
        let mut over = connect_from("127.0.0.2", to).await;
        assert!(
            closed_within(&mut over, Duration::from_secs(5)).await,
            "connection {attempt} over the share was not closed at once"
        );
    }
    assert!(
        !closed_within(&mut held[0], Duration::from_millis(300)).await,
        "a connection within the share was closed"
    );
    assert_eq!(closed_count(&server, "over_share").await, 100);
    // Claims from another address are answered throughout.
    assert_eq!(claims_status(&server, &key).await, Ok(200));
    // A connection that ends gives its share back.
    drop(held.pop());
    common::server::wait_for("the share given back", Duration::from_secs(10), || async {
        let mut again = connect_from("127.0.0.2", to).await;
        !closed_within(&mut again, Duration::from_millis(200)).await
    })
    .await;
    server.stop().await;
}

#[test]
fn the_share_is_a_setting_checked_against_the_cap() {
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut command = std::process::Command::new(common::cargo_bin());
        command
            .args(args)
            .env("ANNUAIRE_EMBEDDED", "off")
            .env("RUST_LOG", "warn");
        for name in ["ANNUAIRE_CONFIG", "DATABASE_URL", "ANNUAIRE_MAX_CONNECTIONS_PER_CLIENT"] {
            command.env_remove(name);
        }
        command.envs(env.iter().copied()).output().expect("annuaire runs")
    };
    let shown = |out: std::process::Output| -> serde_json::Value {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let all: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("JSON");
        all.into_iter()
            .find(|s| s["key"] == "max-connections-per-client")
            .expect("the setting is shown")
    };
    // A quarter of the cap by default; 0 (no share) and the environment accepted.
    let default = shown(run(&["config", "show", "--json"], &[]));
    assert_eq!(
        (&default["value"], &default["source"]),
        (&"1024".into(), &"default".into())
    );
    let off = shown(run(
        &["config", "show", "--json"],
        &[("ANNUAIRE_MAX_CONNECTIONS_PER_CLIENT", "0")],
    ));
    assert_eq!(off["value"], "0");
    // Above the cap, or not a number: refused with the setting's name, before anything runs.
    for bad in ["5000", "-1", "many"] {
        let out = run(&["serve", &format!("--max-connections-per-client={bad}")], &[]);
        assert_eq!(out.status.code(), Some(2), "{bad} accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("--max-connections-per-client"), "{stderr}");
    }
}

//! `/v1/export` against a client that asks and then reads nothing: after the stall limit
//! the export ends with its Postgres transaction, the export slot is free for the next
//! client, and the stuck client, if it ever reads, finds a cut transfer. Over a generated
//! directory far larger than every buffer on the way (the export's channel, hyper's, the
//! two sockets'), so the export must block on its reader.

// The generator is behind the default `gen` feature.
#![cfg(feature = "gen")]

mod common;

use std::time::Duration;

use sqlx::PgPool;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use annuaire::http::HookSettings;
use annuaire::import::{self, ImportOptions};
use annuaire::keys::{self, Scope};
use annuaire::samplegen::{GenOptions, Order, generate};
use annuaire::server::ServerConfig;
use common::migrated_db;
use common::server::{TestServer, wait_for};

/// About 30 MB of NDJSON: several times what the buffers between the export and a
/// client that reads nothing can hold.
const PROFESSIONALS: u64 = 20_000;

/// Sessions of this database running the export's read (a `COPY` of the published
/// generation), or holding a transaction open while idle.
async fn export_sessions(pool: &PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()
           AND (query LIKE 'COPY (SELECT p.national_id%' OR state LIKE 'idle in transaction%')",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn an_export_nobody_reads_ends_and_frees_its_slot() {
    let db = migrated_db().await;
    let dir = tempfile::tempdir().unwrap();
    let options = GenOptions {
        professionals: PROFESSIONALS,
        seed: 5,
        day: 0,
        out_dir: dir.path().to_owned(),
        order: Order::Grouped,
    };
    let zip = generate(&options, &|_| {}).unwrap().zip_path;
    let run = import::import(&db.pool, zip.to_str().unwrap(), &ImportOptions::default())
        .await
        .expect("the generated directory imports");
    assert_eq!(run.status, "published", "{:?}", run.message);
    let (_, admin_key) = keys::create(&db.pool, "admin", &[Scope::Admin]).await.unwrap();
    let config = ServerConfig {
        export_stall: Duration::from_secs(2),
        ..ServerConfig::new(HookSettings::default()).unwrap()
    };
    let server = TestServer::start_with(db.pool.clone(), config).await;

    // A client with a small receive window that reads the answer's head and stops.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let address = server.base.trim_start_matches("http://").parse().unwrap();
    let mut stuck = socket.connect(address).await.unwrap();
    let request = format!(
        "GET /v1/export HTTP/1.1\r\nHost: annuaire\r\nAuthorization: Bearer {admin_key}\r\nAccept-Encoding: identity\r\n\r\n"
    );
    stuck.write_all(request.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    while !received.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stuck.read(&mut buffer).await.unwrap();
        assert!(n > 0, "the server closed before the head");
        received.extend_from_slice(&buffer[..n]);
    }
    assert!(
        received.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&received)
    );
    let pool = db.pool.clone();
    wait_for(
        "the export's read to be open in Postgres",
        Duration::from_secs(10),
        || {
            let pool = pool.clone();
            async move { export_sessions(&pool).await == 1 }
        },
    )
    .await;

    // The stall limit: the export ends, its transaction with it, and the slot is free
    // although the stuck client still holds its socket unread.
    wait_for("the stalled export's session to end", Duration::from_secs(30), || {
        let pool = pool.clone();
        async move { export_sessions(&pool).await == 0 }
    })
    .await;
    let second = server.get("/v1/export", &admin_key).await;
    assert_eq!(second.status(), 200, "the export slot is free again");
    let whole = second.bytes().await.unwrap();
    let lines = whole.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count();
    assert_eq!(lines as i64, run.professionals.unwrap(), "the second export is whole");
    assert!(whole.len() > 16 << 20, "{} bytes: larger than the buffers", whole.len());
    assert_eq!(export_sessions(&db.pool).await, 0, "no session left open");

    // The stuck client, reading at last, gets what was buffered and then a cut transfer:
    // never the chunked body's last chunk, never the whole export.
    stuck.read_to_end(&mut received).await.ok();
    assert!(
        !received.ends_with(b"0\r\n\r\n"),
        "the stalled export ended as if complete"
    );
    assert!(received.len() < whole.len(), "{} bytes", received.len());
    server.stop().await;
}

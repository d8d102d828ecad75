//! Shared helpers for integration tests: a throwaway database per test (dropped when the
//! test ends), migrated and optionally holding a published sample.
//!
//! Databases come from the server named by `TEST_DATABASE_URL` (a role allowed to
//! `CREATE DATABASE`) or, when it is unset, from an embedded cluster shared by all test
//! binaries under `<target>/tmp/test-pg` (override with `ANNUAIRE_TEST_PG_HOME`, e.g. when
//! the checkout sits somewhere the `postgres` system user cannot reach).

// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

pub mod browser;
pub mod cluster;
pub mod fixtures;
pub mod generations;
pub mod server;
pub mod serving;
pub mod source;
pub mod tools;

use std::hash::{BuildHasher, RandomState};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime};

use annuaire::import::{self, GateThresholds, ImportOptions};
use annuaire::store::embedded::EmbeddedCluster;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, PgConnection, PgPool};

/// How long a server that is still starting may take to accept connections.
const CONNECT_DEADLINE: Duration = Duration::from_secs(30);

/// A throwaway database, dropped (with whatever is still connected to it) when this value
/// goes out of scope, failed tests included: keep it alive as long as its pool is used.
pub struct TestDb {
    pub url: String,
    pub pool: PgPool,
    pub name: String,
    admin: PgConnectOptions,
}

/// A fresh, empty database (no migrations run) with a pool of up to 8 connections.
pub async fn test_db() -> TestDb {
    let name = unique_name();
    let (admin, options, url) = match std::env::var("TEST_DATABASE_URL") {
        Ok(server_url) => {
            let server: PgConnectOptions = server_url.parse().expect("TEST_DATABASE_URL is not a PostgreSQL URL");
            // The URL may name no database; `postgres` always exists.
            let admin_db = server.get_database().unwrap_or("postgres").to_owned();
            let options = server.clone().database(&name);
            let url = options.to_url_lossy().to_string();
            (server.database(&admin_db), options, url)
        }
        Err(_) => {
            let cluster = embedded_cluster().await;
            let url = cluster.url(&name);
            (cluster.connect_options("postgres"), cluster.connect_options(&name), url)
        }
    };

    let mut conn = connect_before_deadline(&admin).await;
    sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
    // The database exists; a failed goodbye on the admin connection does not matter.
    let _ = conn.close().await;

    let pool = PgPoolOptions::new()
        .max_connections(8)
        .connect_with(options)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to test database {name}: {e}"));
    TestDb { url, pool, name, admin }
}

/// A fresh database with the migrations applied.
pub async fn migrated_db() -> TestDb {
    let db = test_db().await;
    annuaire::store::MIGRATOR.run(&db.pool).await.expect("migrations apply");
    db
}

/// A migrated database where the sample directory `sample` (under `data-samples/`) is
/// imported and published with the default options.
pub async fn published_db(sample: &str) -> TestDb {
    let db = test_db().await;
    publish_sample(&db.pool, sample).await;
    db
}

/// Migrates the database behind `pool`, then imports and publishes the sample directory
/// `sample` with the default options (also for databases that are not a `TestDb`).
pub async fn publish_sample(pool: &PgPool, sample: &str) {
    annuaire::store::MIGRATOR.run(pool).await.expect("migrations apply");
    let source = samples().join(sample);
    let run = import::import(pool, source.to_str().expect("utf-8 path"), &ImportOptions::default())
        .await
        .expect("the sample imports");
    assert_eq!(run.status, "published", "{sample}: {:?}", run.message);
}

/// Import options whose gate lets the day-1/day-2 differences through: 1 of 17
/// professionals removed and 1 changed, 1 of 8 mailbox addresses removed (12.5 %).
pub fn lenient() -> ImportOptions {
    ImportOptions {
        gate: GateThresholds {
            max_removed_pct: 15.0,
            max_changed_pct: 10.0,
        },
        ..ImportOptions::default()
    }
}

impl Drop for TestDb {
    /// `Drop` cannot await, and the test's runtime may be a current-thread one that this
    /// very thread drives: the drop runs on a thread of its own with a small runtime.
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let mut conn = PgConnection::connect_with(&admin).await.map_err(|e| e.to_string())?;
                // FORCE: the test's pool, a server it started or a child process may still
                // hold connections.
                sqlx::raw_sql(AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
                let _ = conn.close().await;
                Ok::<(), String>(())
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            // Panicking in a drop could abort a failing test's unwinding: say it and go on.
            Ok(Err(e)) => eprintln!("cannot drop test database {}: {e}", self.name),
            Err(_) => eprintln!("cannot drop test database {}: the dropping thread panicked", self.name),
        }
    }
}

/// Path of the `annuaire` binary built for this test run, for CLI tests.
pub fn cargo_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_annuaire"))
}

/// Runs `annuaire <args>` on the database at `url` to its end, quiet but for warnings.
pub fn annuaire_cli(url: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(cargo_bin())
        .args(args)
        .env("DATABASE_URL", url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the binary runs")
}

/// A port free on the loopback now, for a server started as a child process.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    listener.local_addr().expect("its address").port()
}

/// The sample data files shipped with the repository.
pub fn samples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data-samples")
}

async fn embedded_cluster() -> EmbeddedCluster {
    let home = std::env::var_os("ANNUAIRE_TEST_PG_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("test-pg"));
    // Blocking: runs initdb/pg_ctl the first time, then only checks it still runs.
    let started = {
        let home = home.clone();
        tokio::task::spawn_blocking(move || EmbeddedCluster::ensure_running(&home))
    };
    match started.await.expect("embedded cluster task panicked") {
        Ok(cluster) => cluster,
        Err(e) => panic!(
            "cannot run the embedded test cluster under {}: {e}\n\
             (set TEST_DATABASE_URL to use an existing server, or ANNUAIRE_TEST_PG_HOME to \
             put the cluster elsewhere)",
            home.display()
        ),
    }
}

/// Connects, retrying while the server is not up yet (refused connection, or still
/// starting up), until a deadline.
async fn connect_before_deadline(options: &PgConnectOptions) -> PgConnection {
    let deadline = Instant::now() + CONNECT_DEADLINE;
    loop {
        match PgConnection::connect_with(options).await {
            Ok(conn) => return conn,
            Err(e) if is_transient(&e) && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("cannot connect to the test server: {e}"),
        }
    }
}

fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) => true,
        // 57P03 cannot_connect_now: "the database system is starting up".
        sqlx::Error::Database(e) => e.code().as_deref() == Some("57P03"),
        _ => false,
    }
}

/// `t_<pid>_<counter>_<random>`: unique across the parallel tests of one binary (counter),
/// across binaries run at once (pid) and across runs that reuse a pid (random).
fn unique_name() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let counter = COUNTER.fetch_add(1, Ordering::Relaxed);
    // RandomState is seeded randomly per process; the clock adds variation within one.
    let random = RandomState::new().hash_one((SystemTime::now(), counter)) as u32;
    format!("t_{}_{counter}_{random:08x}", std::process::id())
}

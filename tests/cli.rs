//! The command line as operators and scripts use it: exit statuses, `--json` output, the
//! claims document on stdout, and an import killed mid-way that leaves nothing behind.

mod common;

use std::process::{Command, Output};
#[cfg(feature = "gen")]
use std::time::{Duration, Instant};

use common::{annuaire_cli as annuaire, cargo_bin, samples, test_db};

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn sample(path: &str) -> String {
    samples().join(path).to_string_lossy().into_owned()
}

#[tokio::test]
async fn import_json_claims_and_exit_statuses() {
    let db = test_db().await;
    let out = annuaire(&db.url, &["import", &sample("ps-libreacces"), "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let run: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("--json prints JSON");
    for field in [
        "id",
        "status",
        "added",
        "changed",
        "removed",
        "rejected",
        "professionals",
        "phases",
    ] {
        assert!(run.get(field).is_some(), "missing {field} in {run}");
    }
    assert_eq!(run["status"], "published");
    assert_eq!(run["added"], 17);

    let out = annuaire(&db.url, &["claims", "10003456125"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("claims JSON");
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(samples().join("expected/810003456125.json")).unwrap()).unwrap();
    assert_eq!(doc, expected);

    let out = annuaire(&db.url, &["claims", "810000000000"]);
    assert_eq!(out.status.code(), Some(4), "never seen");
    let out = annuaire(&db.url, &["claims", "12345"]);
    assert_eq!(out.status.code(), Some(6), "malformed");
    assert!(stderr(&out).contains("malformed identifier"), "{}", stderr(&out));

    // Day 2 is held by the default gate: exit 3, and `imports approve` publishes it.
    let out = annuaire(&db.url, &["import", &sample("ps-libreacces-day2"), "--json"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let held: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(held["status"], "held");
    let held_id = held["id"].as_i64().unwrap().to_string();
    let out = annuaire(&db.url, &["imports", "approve", &held_id]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = annuaire(&db.url, &["claims", "810013908172"]);
    assert_eq!(out.status.code(), Some(5), "removed");
    assert!(
        stderr(&out).contains("removed from the directory on 2026-11-26"),
        "{}",
        stderr(&out)
    );

    let out = annuaire(&db.url, &["imports", "list", "--json"]);
    let list: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let statuses: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, vec!["published", "published"]);
}

#[tokio::test]
async fn failed_import_exits_1_and_show_lists_rejected_lines() {
    let db = test_db().await;
    let out = annuaire(&db.url, &["import", &sample("damaged/bad-lines")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("2 of 19 lines rejected"), "{}", stderr(&out));
    let out = annuaire(&db.url, &["imports", "show", "1", "--json"]);
    let run: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(run["status"], "failed");
    let lines: Vec<i64> = run["rejected_lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["line"].as_i64().unwrap())
        .collect();
    assert_eq!(lines, vec![13, 18]);
    let out = annuaire(&db.url, &["imports", "show", "1"]);
    assert!(
        stdout(&out).contains("PS_LibreAcces_Personne_activite_202611250900.txt:13: expected 56 fields, found 55"),
        "{}",
        stdout(&out)
    );
}

/// A killed importer leaves the published generation as it was, and the next run works
/// without any manual clean-up.
// Runs `annuaire gen-sample`, there with the default `gen` feature.
#[cfg(feature = "gen")]
#[tokio::test]
async fn killed_import_changes_nothing_and_the_next_run_recovers() {
    let db = test_db().await;
    let out = annuaire(&db.url, &["import", &sample("ps-libreacces")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let work = tempfile::tempdir().unwrap();
    let out = annuaire(
        &db.url,
        &[
            "gen-sample",
            "--professionals",
            "150000",
            "--seed",
            "7",
            "--out",
            &work.path().to_string_lossy(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let zip = std::fs::read_dir(work.path()).unwrap().next().unwrap().unwrap().path();

    let mut child = Command::new(cargo_bin())
        .args(["import", &zip.to_string_lossy(), "--force"])
        .env("DATABASE_URL", &db.url)
        .env("RUST_LOG", "warn")
        .spawn()
        .expect("import starts");
    // Kill it once its COPY has moved many rows, i.e. in the middle of its work.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let copied: Option<i64> = sqlx::query_scalar(
            "SELECT max(tuples_processed) FROM pg_stat_progress_copy WHERE datname = current_database()",
        )
        .fetch_one(&db.pool)
        .await
        .unwrap();
        if copied.unwrap_or(0) > 10_000 {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the import ended before it could be killed"
        );
        assert!(Instant::now() < deadline, "the import never started staging");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let out = annuaire(&db.url, &["claims", "810003456125"]);
    assert_eq!(out.status.code(), Some(0), "the published generation still answers");
    let published: i64 = sqlx::query_scalar("SELECT run_id FROM publication")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(published, 1);

    let out = annuaire(&db.url, &["import", &sample("ps-libreacces-day2"), "--force", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let run: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(run["status"], "published");
    let killed: (String, String) = sqlx::query_as("SELECT status, message FROM import_run WHERE id = 2")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(killed.0, "failed");
    assert!(killed.1.contains("interrupted"), "{}", killed.1);
    let leftovers: i64 = sqlx::query_scalar("SELECT count(*) FROM professional_record WHERE run_id = 2")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(leftovers, 0);
}

/// A database restart in the middle of an import: the import fails, the published
/// generation is untouched, and the next import recovers by itself. This test runs its own
/// cluster, since it restarts it.
// Runs `annuaire gen-sample`, there with the default `gen` feature.
#[cfg(feature = "gen")]
#[tokio::test]
async fn database_restart_during_import_changes_nothing() {
    let cluster = common::cluster::PrivateCluster::start("restart").await;
    let url = cluster.url.clone();

    let out = annuaire(&url, &["import", &sample("ps-libreacces")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().to_string_lossy().into_owned();
    let out = annuaire(
        &url,
        &["gen-sample", "--professionals", "150000", "--seed", "9", "--out", &dir],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let zip = std::fs::read_dir(work.path()).unwrap().next().unwrap().unwrap().path();

    let mut child = Command::new(cargo_bin())
        .args(["import", &zip.to_string_lossy(), "--force"])
        .env("DATABASE_URL", &url)
        .env("RUST_LOG", "warn")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("import starts");
    let monitor = sqlx::PgPool::connect(&url).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let copied: Option<i64> = sqlx::query_scalar("SELECT max(tuples_processed) FROM pg_stat_progress_copy")
            .fetch_one(&monitor)
            .await
            .unwrap();
        if copied.unwrap_or(0) > 10_000 {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the import ended before the restart"
        );
        assert!(Instant::now() < deadline, "the import never started copying");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    monitor.close().await;
    cluster.stop().await;
    let status = child.wait().unwrap();
    assert!(!status.success(), "an import that lost its database must fail");
    cluster.restart().await;

    let out = annuaire(&url, &["claims", "810003456125"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the published generation still answers: {}",
        stderr(&out)
    );
    let out = annuaire(&url, &["import", &sample("ps-libreacces-day2"), "--force", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let run: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        (run["status"].as_str(), run["id"].as_i64()),
        (Some("published"), Some(3))
    );
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let interrupted: String = sqlx::query_scalar("SELECT status FROM import_run WHERE id = 2")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(interrupted, "failed");
    pool.close().await;
    cluster.remove().await;
}

#[tokio::test]
async fn keys_are_created_once_listed_without_secrets_and_revoked() {
    let db = test_db().await;
    let out = annuaire(
        &db.url,
        &["keys", "create", "--name", "idp-prod", "--scope", "claims,search"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let secret = stdout(&out).trim().to_owned();
    assert!(secret.starts_with("ann_") && secret.len() == 68, "{secret}");
    assert!(stderr(&out).contains("shown once"), "{}", stderr(&out));
    let again = annuaire(&db.url, &["keys", "create", "--name", "idp-prod", "--scope", "claims"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("an active key named \"idp-prod\" exists already"),
        "{}",
        stderr(&again)
    );
    let bad = annuaire(&db.url, &["keys", "create", "--name", "x", "--scope", "root"]);
    assert!(stderr(&bad).contains("unknown scope \"root\""), "{}", stderr(&bad));

    let out = annuaire(&db.url, &["keys", "list", "--json"]);
    let listed = stdout(&out);
    assert!(!listed.contains(&secret[4..]), "the secret is never listed");
    let keys: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(keys[0]["name"], "idp-prod");
    assert_eq!(keys[0]["scopes"], serde_json::json!(["claims", "search"]));
    let stored: Vec<u8> = sqlx::query_scalar("SELECT key_hash FROM api_key")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(stored.len(), 32, "only a hash is stored");

    let ring = annuaire::keys::KeyRing::load(&db.pool).await.unwrap();
    assert!(ring.authenticate(&secret).is_some());
    let out = annuaire(&db.url, &["keys", "revoke", "idp-prod"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let ring = annuaire::keys::KeyRing::load(&db.pool).await.unwrap();
    assert!(ring.authenticate(&secret).is_none(), "revoked");
    let out = annuaire(&db.url, &["keys", "revoke", "idp-prod"]);
    assert_eq!(out.status.code(), Some(1), "nothing left to revoke");
}

/// A key name that would not print as itself (a newline forging a line of `keys list`, an
/// escape sequence) is refused, naming it escaped; an unknown scope's error lists every
/// scope, `feed` included.
#[tokio::test]
async fn keys_refuse_unprintable_names_and_name_every_scope() {
    let db = test_db().await;
    for name in ["idp\n   2  admin-root", "idp\u{1b}[2J", "idp\u{202e}dorp"] {
        let out = annuaire(&db.url, &["keys", "create", "--name", name, "--scope", "claims"]);
        assert_eq!(out.status.code(), Some(1), "{name:?}: {}", stderr(&out));
        let expected = format!("key name {name:?} holds a control or text-direction character");
        assert!(stderr(&out).contains(&expected), "{}", stderr(&out));
        assert_eq!(stdout(&out), "", "no secret printed");
    }
    let listed = annuaire(&db.url, &["keys", "list", "--json"]);
    assert_eq!(stdout(&listed).trim(), "[]", "no key created");

    let bad = annuaire(&db.url, &["keys", "create", "--name", "x", "--scope", "claims,root"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("unknown scope \"root\": the scopes are claims, search, admin, feed"),
        "{}",
        stderr(&bad)
    );
}

/// `annuaire … --json | head`: a reader that goes away early is no crash. What is left to
/// print is dropped quietly (no panic, no backtrace hint) and the command ends with its
/// own status: the import below is published and exits 0.
#[tokio::test]
async fn a_closed_stdout_ends_quietly_with_the_commands_status() {
    let db = test_db().await;
    let created = annuaire(&db.url, &["keys", "create", "--name", "idp", "--scope", "claims"]);
    assert_eq!(created.status.code(), Some(0), "{}", stderr(&created));
    let source = sample("ps-libreacces");
    let commands: [&[&str]; 5] = [
        &["import", &source, "--json"],
        &["imports", "list", "--json"],
        &["imports", "show", "1"],
        &["keys", "list", "--json"],
        &["claims", "810003456125"],
    ];
    for args in commands {
        // A pipe whose reading end is closed before the command writes: every write fails
        // with a broken pipe, as under `| head` once head has read its lines.
        let (reader, writer) = std::io::pipe().expect("a pipe");
        drop(reader);
        let out = Command::new(cargo_bin())
            .args(args)
            .env("DATABASE_URL", &db.url)
            .env("RUST_LOG", "warn")
            .stdout(writer)
            .output()
            .expect("the binary runs");
        assert!(!stderr(&out).contains("panicked"), "{args:?}: {}", stderr(&out));
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    }
    let out = annuaire(&db.url, &["imports", "list", "--json"]);
    let list: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(list[0]["status"], "published", "the import ran to its end: {list}");
}

/// A kid is base64url: one in 64 starts with `-`, and `signing-keys retire` must take it as
/// the kid, not refuse it as an unknown option.
#[test]
fn a_kid_that_starts_with_a_hyphen_is_taken_as_the_kid() {
    for args in [
        &["-Xyz"][..],
        &["--unproven-secret", "-Xyz"],
        &["-Xyz", "--unproven-secret"],
    ] {
        let output = Command::new(cargo_bin())
            .args(["signing-keys", "retire"])
            .args(args)
            .env("ANNUAIRE_EMBEDDED", "off")
            .env_remove("DATABASE_URL")
            .env_remove("ANNUAIRE_CONFIG")
            .output()
            .unwrap();
        // Past the parser: it stops at the missing database, not at the arguments.
        assert_eq!(output.status.code(), Some(1), "{args:?}: {}", stderr(&output));
        assert!(
            stderr(&output).contains("DATABASE_URL"),
            "{args:?}: {}",
            stderr(&output)
        );
    }
}

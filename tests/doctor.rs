//! `annuaire doctor` against real Postgres: exit 0 on a healthy store (a missing search
//! index is only a warning), and non-zero naming the problem with a wrong `DATABASE_URL`,
//! a missing jobs folder, pending migrations, nothing published, or an old generation; a
//! signing key that the secret cannot open is an error.

mod common;

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use common::{published_db, test_db};

fn doctor(url: &str, jobs: &Path, home: &Path) -> (Option<i32>, Value, String) {
    doctor_with_secret(url, jobs, home, None)
}

/// The doctor with `secret` as ANNUAIRE_SIGNING_KEY_SECRET (none: unset).
fn doctor_with_secret(url: &str, jobs: &Path, home: &Path, secret: Option<&str>) -> (Option<i32>, Value, String) {
    let mut command = std::process::Command::new(common::cargo_bin());
    command
        .args(["doctor", "--json", "--jobs-dir"])
        .arg(jobs)
        .env("DATABASE_URL", url)
        .env("ANNUAIRE_HOME", home)
        .env("RUST_LOG", "warn")
        .env_remove("ANNUAIRE_SIGNING_KEY_SECRET");
    if let Some(secret) = secret {
        command.env("ANNUAIRE_SIGNING_KEY_SECRET", secret);
    }
    let out: Output = command.output().expect("the binary runs");
    let report = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (
        out.status.code(),
        report,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The status of the check named `name`, and its detail.
fn check<'a>(report: &'a Value, name: &str) -> (&'a str, &'a str) {
    let check = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == name)
        .unwrap_or_else(|| panic!("no check {name}: {report}"));
    (check["status"].as_str().unwrap(), check["detail"].as_str().unwrap())
}

#[tokio::test]
async fn doctor_passes_a_healthy_store_and_names_each_problem() {
    let jobs = Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs");
    let home = tempfile::tempdir().unwrap();
    let db = published_db("ps-libreacces").await;

    let (code, report, stderr) = doctor(&db.url, &jobs, home.path());
    assert_eq!(code, Some(0), "{report} {stderr}");
    assert_eq!(check(&report, "database").0, "ok");
    assert_eq!(check(&report, "migrations").0, "ok");
    assert_eq!(check(&report, "published generation").0, "ok");
    assert_eq!(check(&report, "job nightly-ps-libreacces").0, "ok");
    assert_eq!(
        check(&report, "search index").0,
        "warning",
        "no index yet: a warning, not an error"
    );
    assert_eq!(report["status"], "warning");

    // A wrong DATABASE_URL: unreachable, exit 1 (and nothing else is claimed about it).
    let (code, report, _) = doctor("postgres://annuaire@127.0.0.1:1/annuaire", &jobs, home.path());
    assert_eq!(code, Some(1));
    let (status, detail) = check(&report, "database");
    assert_eq!(status, "error");
    assert!(detail.contains("unreachable"), "{detail}");

    // A missing jobs folder.
    let missing = home.path().join("no-jobs-here");
    let (code, report, _) = doctor(&db.url, &missing, home.path());
    assert_eq!(code, Some(1));
    let (status, detail) = check(&report, "jobs");
    assert_eq!(status, "error");
    assert!(detail.contains("no-jobs-here"), "{detail}");

    // An old generation: published 40 hours ago.
    sqlx::query("UPDATE import_run SET published_at = now() - interval '40 hours'")
        .execute(&db.pool)
        .await
        .unwrap();
    let (code, report, _) = doctor(&db.url, &jobs, home.path());
    assert_eq!(code, Some(1));
    let (status, detail) = check(&report, "published generation");
    assert_eq!(status, "error");
    assert!(detail.contains("more than 36 h"), "{detail}");

    // Pending migrations: a database nobody migrated; the doctor does not migrate it.
    let empty = test_db().await;
    let (code, report, _) = doctor(&empty.url, &jobs, home.path());
    assert_eq!(code, Some(1));
    let (status, detail) = check(&report, "migrations");
    assert_eq!(status, "error");
    assert!(detail.contains("pending") && detail.contains("0001"), "{detail}");
    let tables: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        .fetch_one(&empty.pool)
        .await
        .unwrap();
    assert_eq!(tables, 0, "the doctor migrated nothing");
}

#[tokio::test]
async fn doctor_reports_a_signing_key_the_secret_cannot_open_as_an_error() {
    use annuaire::signing::{Sealing, generate};
    use annuaire::store::signing_keys;
    const SECRET: &str = "the servers' secret, more than thirty-two characters";
    const OTHER: &str = "a mistyped secret, also more than thirty-two characters";
    let jobs = Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs");
    let home = tempfile::tempdir().unwrap();
    let db = published_db("ps-libreacces").await;
    let (_, report, _) = doctor_with_secret(&db.url, &jobs, home.path(), Some(SECRET));
    assert_eq!(check(&report, "signing keys").0, "ok", "none stored: signed claims off");

    let good = generate(&Sealing::from_secret(SECRET).unwrap()).unwrap();
    signing_keys::add(&db.pool, &good, std::time::Duration::ZERO)
        .await
        .unwrap();
    let (code, report, stderr) = doctor_with_secret(&db.url, &jobs, home.path(), Some(SECRET));
    assert_eq!(code, Some(0), "{report} {stderr}");
    assert_eq!(check(&report, "signing keys").0, "ok");

    let bad = generate(&Sealing::from_secret(OTHER).unwrap()).unwrap();
    signing_keys::add(&db.pool, &bad, std::time::Duration::ZERO)
        .await
        .unwrap();
    let (code, report, _) = doctor_with_secret(&db.url, &jobs, home.path(), Some(SECRET));
    assert_eq!(code, Some(1));
    let (status, detail) = check(&report, "signing keys");
    assert_eq!(status, "error");
    assert_eq!(
        detail,
        format!(
            "unusable ({}: it was not sealed under this ANNUAIRE_SIGNING_KEY_SECRET)",
            bad.kid
        )
    );

    // Without the secret the doctor cannot tell: a warning, not an error.
    let (_, report, _) = doctor_with_secret(&db.url, &jobs, home.path(), None);
    let (status, detail) = check(&report, "signing keys");
    assert_eq!(status, "warning");
    assert!(detail.contains("not checked"), "{detail}");
}

/// A CA bundle that holds no certificate (empty, a key, the wrong file) parses as a bundle
/// of none: the doctor names it as an error instead of saying ok.
#[tokio::test]
async fn doctor_reports_a_ca_bundle_without_a_certificate() {
    let home = tempfile::tempdir().unwrap();
    let jobs = Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs");
    let key_only = home.path().join("key-only.pem");
    std::fs::write(
        &key_only,
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIB3Bq4m4g0v1Y5kP0xQe5Q0pYjY5V8zYjYzYjYzYjYzY\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let empty = home.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    for bundle in [&key_only, &empty] {
        let out = std::process::Command::new(common::cargo_bin())
            .args(["doctor", "--json", "--jobs-dir"])
            .arg(&jobs)
            // Unreachable: the CA bundle is checked all the same.
            .env("DATABASE_URL", "postgres://annuaire@127.0.0.1:1/annuaire")
            .env("ANNUAIRE_HOME", home.path())
            .env("ANNUAIRE_CA_BUNDLE", bundle)
            .env("RUST_LOG", "warn")
            .output()
            .expect("the binary runs");
        assert_eq!(out.status.code(), Some(1));
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        let (status, detail) = check(&report, "CA bundle");
        assert_eq!(status, "error", "{report}");
        assert_eq!(
            detail,
            format!(
                "download settings: the CA bundle {} holds no PEM certificate",
                bundle.display()
            )
        );
    }
}

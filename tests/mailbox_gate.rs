//! The safety gate on MSSanté extracts: a header-only or truncated mailbox file is held
//! instead of wiping the published addresses, a small change passes, the first mailbox
//! set is not gated, and the figures are in the run record.

mod common;

use std::path::{Path, PathBuf};

use annuaire::import::{self, ImportError, ImportOptions};
use annuaire::store::runs::RunSummary;
use common::{annuaire_cli, migrated_db, published_db, samples};
use sqlx::PgPool;

const SAMPLE: &str = "ps-libreacces/Extraction_Correspondance_MSSante_202611250900.txt";

/// The sample's lines, header first.
fn sample_lines() -> Vec<String> {
    std::fs::read_to_string(samples().join(SAMPLE))
        .expect("the sample MSSanté file")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// An MSSanté file of `lines` (header included) dated `ts`, in `dir`.
fn mailbox_file(dir: &Path, ts: &str, lines: &[String]) -> PathBuf {
    let path = dir.join(format!("Extraction_Correspondance_MSSante_{ts}.txt"));
    std::fs::write(&path, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).expect("written");
    path
}

/// The address of an MSSanté line (its second field).
fn address(line: &str) -> &str {
    line.split('|').nth(1).expect("an address field")
}

/// `count` PER lines for made-up addresses, built on the sample's first data line.
fn generated(count: usize) -> Vec<String> {
    let lines = sample_lines();
    let template = &lines[1];
    let old = address(template).to_owned();
    let mut out = vec![lines[0].clone()];
    out.extend((0..count).map(|i| template.replacen(&old, &format!("box{i:04}@medecin.mssante.fr"), 1)));
    out
}

async fn import(pool: &PgPool, path: &Path) -> Result<RunSummary, ImportError> {
    import::import(pool, path.to_str().expect("utf-8 path"), &ImportOptions::default()).await
}

async fn published_addresses(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT address FROM mailbox WHERE run_id = (SELECT mailbox_run_id FROM publication) ORDER BY address",
    )
    .fetch_all(pool)
    .await
    .expect("mailboxes readable")
}

fn mailbox_figures(run: &RunSummary) -> serde_json::Value {
    run.gate
        .as_ref()
        .and_then(|g| g.get("mailboxes"))
        .cloned()
        .unwrap_or_else(|| panic!("no gate.mailboxes in run {}: {:?}", run.id, run.gate))
}

fn figures(published: i64, added: i64, changed: i64, removed: i64, unchanged: i64) -> serde_json::Value {
    serde_json::json!({
        "published": published, "added": added, "changed": changed, "removed": removed, "unchanged": unchanged,
    })
}

#[tokio::test]
async fn a_header_only_mailbox_file_is_held_by_the_cli_and_approved_like_any_held_run() {
    let db = published_db("ps-libreacces").await;
    let before = published_addresses(&db.pool).await;
    assert_eq!(before.len(), 8, "the sample's distinct addresses");
    let dir = tempfile::tempdir().unwrap();
    let header_only = mailbox_file(dir.path(), "202611260900", &sample_lines()[..1]);

    let out = annuaire_cli(&db.url, &["import", header_only.to_str().unwrap(), "--json"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(3),
        "held: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let held: serde_json::Value = serde_json::from_str(&stdout).expect("a run record");
    assert_eq!(held["status"], "held");
    assert_eq!(held["mailboxes"], 0);
    assert_eq!(held["gate"]["mailboxes"], figures(8, 0, 0, 8, 0));
    let message = held["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("held by the safety gate: MSSanté: 8 of 8 published mailboxes removed (100.00 % > 1 %)"),
        "{message}"
    );
    assert_eq!(published_addresses(&db.pool).await, before, "nothing wiped");

    let id = held["id"].as_i64().unwrap().to_string();
    let out = annuaire_cli(&db.url, &["imports", "show", &id, "--json"]);
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).expect("imports show --json");
    assert_eq!(shown["gate"]["mailboxes"], figures(8, 0, 0, 8, 0));

    // An operator who means it approves it, as any held run.
    let out = annuaire_cli(&db.url, &["imports", "approve", &id]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(published_addresses(&db.pool).await.is_empty());
}

#[tokio::test]
async fn a_truncated_mailbox_file_is_held_and_the_published_set_stays() {
    let db = published_db("ps-libreacces").await;
    let before = published_addresses(&db.pool).await;
    let lines = sample_lines();
    let half = &lines[..lines.len() / 2];
    let mut kept: Vec<&str> = half[1..].iter().map(|l| address(l)).collect();
    kept.sort_unstable();
    kept.dedup();
    let removed = before.len() as i64 - kept.len() as i64;
    assert!(removed > 0, "the truncation loses addresses");

    let dir = tempfile::tempdir().unwrap();
    let run = import(&db.pool, &mailbox_file(dir.path(), "202611260900", half))
        .await
        .expect("the run ends");
    assert_eq!(run.status, "held", "{:?}", run.message);
    assert_eq!(mailbox_figures(&run), figures(8, 0, 0, removed, kept.len() as i64));
    assert!(
        run.message
            .as_deref()
            .unwrap_or_default()
            .contains(&format!("MSSanté: {removed} of 8 published mailboxes removed")),
        "{:?}",
        run.message
    );
    assert_eq!(published_addresses(&db.pool).await, before);
    // The directory is untouched by a mailbox-only run, and has no figures of its own in it.
    assert_eq!(run.gate.as_ref().and_then(|g| g.get("rpps")), None);
}

#[tokio::test]
async fn the_first_mailbox_set_is_not_gated_and_a_small_change_passes() {
    let db = migrated_db().await;
    let dir = tempfile::tempdir().unwrap();
    // Even an empty file is published first: there is nothing to lose.
    let empty = import(
        &db.pool,
        &mailbox_file(dir.path(), "202611240900", &sample_lines()[..1]),
    )
    .await
    .expect("the run ends");
    assert_eq!(empty.status, "published", "{:?}", empty.message);
    assert_eq!(mailbox_figures(&empty), figures(0, 0, 0, 0, 0));

    let day1 = generated(200);
    let first = import(&db.pool, &mailbox_file(dir.path(), "202611250900", &day1))
        .await
        .expect("the run ends");
    assert_eq!(first.status, "published", "{:?}", first.message);
    assert_eq!(mailbox_figures(&first), figures(0, 200, 0, 0, 0));

    // 1 of 200 removed (0.5 %, under 1 %), 3 added, 1 changed (its service).
    let mut day2 = day1.clone();
    day2.remove(1);
    day2[5] = day2[5].replace("|CARDIOLOGIE|", "|RYTHMOLOGIE|");
    day2.extend(generated(203).into_iter().skip(201));
    let second = import(&db.pool, &mailbox_file(dir.path(), "202611260900", &day2))
        .await
        .expect("the run ends");
    assert_eq!(second.status, "published", "{:?}", second.message);
    assert_eq!(mailbox_figures(&second), figures(200, 3, 1, 1, 198));
    let published = published_addresses(&db.pool).await;
    assert_eq!(published.len(), 202);
    assert!(!published.contains(&address(&day1[1]).to_owned()));

    // 3 of 202 removed (1.49 %): over the threshold.
    let mut day3 = day2.clone();
    day3.drain(1..4);
    let third = import(&db.pool, &mailbox_file(dir.path(), "202611270900", &day3))
        .await
        .expect("the run ends");
    assert_eq!(third.status, "held", "{:?}", third.message);
    assert_eq!(mailbox_figures(&third), figures(202, 0, 0, 3, 199));
    assert_eq!(published_addresses(&db.pool).await, published);
}

#[tokio::test]
async fn a_newer_mailbox_set_discards_a_held_one_whose_set_it_deleted() {
    let db = published_db("ps-libreacces").await;
    let before = published_addresses(&db.pool).await;
    let dir = tempfile::tempdir().unwrap();
    let held = import(
        &db.pool,
        &mailbox_file(dir.path(), "202611260900", &sample_lines()[..1]),
    )
    .await
    .expect("the run ends");
    assert_eq!(held.status, "held", "{:?}", held.message);
    // The same addresses, a day later: nothing removed, published.
    let newer = import(&db.pool, &mailbox_file(dir.path(), "202611270900", &sample_lines()))
        .await
        .expect("the run ends");
    assert_eq!(newer.status, "published", "{:?}", newer.message);
    assert_eq!(mailbox_figures(&newer), figures(8, 0, 0, 0, 8));
    // The held run was compared with a set that is gone: approving it is refused, and
    // does not publish an empty set.
    let refused = import::approve(&db.pool, held.id).await.unwrap_err();
    assert!(matches!(refused, ImportError::NotHeld { .. }), "{refused}");
    assert_eq!(published_addresses(&db.pool).await, before);
}

//! The freshness guard: an extract older than the published one, or of the same time with
//! other content, is held (published data unchanged) until approved or forced; a source
//! whose names carry no timestamp is not guarded and its run says so.

mod common;

use std::path::{Path, PathBuf};

use annuaire::import::{self, GateThresholds, ImportOptions};
use annuaire::national_id::NationalId;
use annuaire::store::professionals::{self, ClaimsLookup};
use annuaire::store::runs;
// `lenient`: the gate lets the day-1/day-2 differences through, only the guard may hold.
use common::{lenient, migrated_db, samples};
use sqlx::PgPool;

async fn import(pool: &PgPool, source: &Path, options: &ImportOptions) -> runs::RunSummary {
    import::import(pool, source.to_str().expect("utf-8 path"), options)
        .await
        .expect("the import runs")
}

/// A copy of `from` with every file renamed by `rename`.
fn renamed(from: &Path, rename: impl Fn(&str) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        std::fs::copy(entry.path(), dir.path().join(rename(&name))).unwrap();
    }
    dir
}

fn day1() -> PathBuf {
    samples().join("ps-libreacces")
}

fn day2() -> PathBuf {
    samples().join("ps-libreacces-day2")
}

/// Day 2 changed Sophie BERNARD's phone number.
async fn shows_day2(pool: &PgPool) -> bool {
    match professionals::claims(pool, &NationalId::parse("810015620395").unwrap())
        .await
        .unwrap()
    {
        ClaimsLookup::Found { claims_json, .. } => String::from_utf8(claims_json).unwrap().contains("0148589999"),
        other => panic!("expected a document, got {other:?}"),
    }
}

#[tokio::test]
async fn an_older_extract_is_held_with_its_reason_and_published_once_approved() {
    let db = migrated_db().await;
    let newer = import(&db.pool, &day2(), &lenient()).await;
    assert_eq!(newer.status, "published");
    let older = import(&db.pool, &day1(), &lenient()).await;
    assert_eq!(older.status, "held", "{:?}", older.message);
    let message = older.message.clone().unwrap_or_default();
    assert!(
        message.contains(&format!(
            "extract of 2026-11-25 09:00 is older than the published extract of 2026-11-26 09:00 (run {})",
            newer.id
        )) && message.contains(&format!("annuaire imports approve {}", older.id))
            && message.contains("--force"),
        "{message}"
    );
    assert_eq!(runs::current_generation(&db.pool).await.unwrap(), Some(newer.id));
    assert!(shows_day2(&db.pool).await, "the published data is day 2's");
    // The held run keeps its gate counts, for the review.
    assert_eq!((older.added, older.changed, older.removed), (Some(1), Some(1), Some(1)));
    assert!(older.gate.is_some());

    let approved = import::approve(&db.pool, older.id).await.expect("approve");
    assert_eq!(approved.status, "published");
    assert!(!shows_day2(&db.pool).await, "day 1's data once approved");
}

#[tokio::test]
async fn same_timestamp_other_content_is_held_and_force_publishes_it() {
    let db = migrated_db().await;
    import(&db.pool, &day1(), &lenient()).await;
    let disguised = renamed(&day2(), |name| name.replace("202611260900", "202611250900"));
    let held = import(&db.pool, disguised.path(), &lenient()).await;
    assert_eq!(held.status, "held", "{:?}", held.message);
    let message = held.message.unwrap_or_default();
    assert!(
        message.contains("has the timestamp of the published extract"),
        "{message}"
    );
    assert!(!shows_day2(&db.pool).await);

    let db = migrated_db().await;
    import(&db.pool, &day1(), &lenient()).await;
    let forced = import(
        &db.pool,
        disguised.path(),
        &ImportOptions {
            force: true,
            ..lenient()
        },
    )
    .await;
    assert_eq!(forced.status, "published", "{:?}", forced.message);
    assert!(
        forced
            .message
            .unwrap_or_default()
            .contains("published with --force despite"),
        "the run says what was overridden"
    );
    assert!(shows_day2(&db.pool).await);
}

#[tokio::test]
async fn a_source_without_timestamps_is_not_guarded_and_says_so() {
    let db = migrated_db().await;
    import(&db.pool, &day2(), &lenient()).await;
    // data.gouv.fr names: `ps-libreacces-personne-activite.txt`, no `<ts>`.
    let undated = renamed(&day1(), |name| {
        let kind = name.rsplit_once('_').map_or(name, |(kind, _)| kind);
        format!("{}.txt", kind.to_ascii_lowercase().replace('_', "-"))
    });
    // Only the guard is under test here: the renamed SavoirFaire and Dipl_AutExerc files are
    // not data.gouv.fr's exact names, so their lines count as changes; the gate lets them by.
    let open_gate = ImportOptions {
        gate: GateThresholds {
            max_removed_pct: 100.0,
            max_changed_pct: 100.0,
        },
        ..ImportOptions::default()
    };
    let run = import(&db.pool, undated.path(), &open_gate).await;
    assert_eq!(run.status, "published", "{:?}", run.message);
    assert_eq!(run.extract_ts, None);
    let message = run.message.unwrap_or_default();
    assert!(message.contains("carry no timestamp"), "{message}");
}

#[tokio::test]
async fn an_older_mailbox_extract_alone_is_held_and_can_be_approved() {
    let db = migrated_db().await;
    import(&db.pool, &day2(), &lenient()).await;
    let older = day1().join("Extraction_Correspondance_MSSante_202611250900.txt");
    let held = import(&db.pool, &older, &lenient()).await;
    assert_eq!(held.status, "held", "{:?}", held.message);
    assert!(
        held.message
            .unwrap_or_default()
            .contains("is older than the published extract")
    );
    let approved = import::approve(&db.pool, held.id)
        .await
        .expect("a mailbox-only run approves");
    assert_eq!(approved.status, "published");
}

//! The import pipeline against a real Postgres: what gets published, what is refused, and
//! that nothing a failed or held run did is ever visible.

mod common;

use std::path::{Path, PathBuf};

use annuaire::import::{self, ImportError, ImportOptions};
use annuaire::national_id::NationalId;
use annuaire::store::professionals::{self, ClaimsLookup};
use annuaire::store::runs;
use common::source::SourceServer;
use common::{lenient, migrated_db, samples};
use sqlx::PgPool;

fn day1() -> PathBuf {
    samples().join("ps-libreacces")
}

fn day2() -> PathBuf {
    samples().join("ps-libreacces-day2")
}

async fn import(pool: &PgPool, source: &Path, options: &ImportOptions) -> Result<runs::RunSummary, ImportError> {
    import::import(pool, source.to_str().expect("utf-8 path"), options).await
}

async fn claims(pool: &PgPool, id: &str) -> ClaimsLookup {
    professionals::claims(pool, &NationalId::parse(id).expect("valid id"))
        .await
        .expect("lookup works")
}

async fn claims_json(pool: &PgPool, id: &str) -> String {
    match claims(pool, id).await {
        ClaimsLookup::Found { claims_json, .. } => String::from_utf8(claims_json).expect("utf-8"),
        other => panic!("{id}: expected a document, got {other:?}"),
    }
}

async fn published_run(pool: &PgPool) -> Option<annuaire::store::RunId> {
    runs::current_generation(pool).await.expect("publication readable")
}

/// Whitespace outside strings removed: the hand-written file in the byte form we serve, so
/// that key order is compared too.
fn minify(json: &str) -> String {
    let (mut out, mut in_string, mut escaped) = (String::new(), false, false);
    for c in json.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}

fn assert_claims_equal(actual: &str, expected_file: &str) {
    let expected = std::fs::read_to_string(samples().join("expected").join(expected_file)).expect("expected file");
    let actual_value: serde_json::Value = serde_json::from_str(actual).expect("served JSON parses");
    let expected_value: serde_json::Value = serde_json::from_str(&expected).expect("expected JSON parses");
    assert_eq!(actual_value, expected_value, "claims differ from {expected_file}");
    assert_eq!(
        actual,
        minify(&expected),
        "same values but not the same key order as {expected_file}"
    );
}

#[tokio::test]
async fn first_import_publishes_every_professional_with_the_exact_claims() {
    let db = migrated_db().await;
    let run = import(&db.pool, &day1(), &ImportOptions::default())
        .await
        .expect("import succeeds");
    assert_eq!(run.status, "published");
    assert_eq!(
        (run.professionals, run.added, run.changed, run.removed),
        (Some(17), Some(17), Some(0), Some(0))
    );
    assert_eq!(run.rejected, 0);
    // The first import loads its records and publishes its professionals without indexes
    // and builds them after: all are back, as the migrations define them.
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT indexdef FROM pg_indexes WHERE tablename IN ('professional', 'professional_record') ORDER BY indexname",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        indexes,
        vec![
            "CREATE UNIQUE INDEX professional_pk ON public.professional USING btree (national_id)",
            "CREATE UNIQUE INDEX professional_record_pk ON public.professional_record USING btree (national_id, run_id)",
            "CREATE INDEX professional_record_run_ix ON public.professional_record USING btree (run_id, national_id)",
        ]
    );
    // 9 lines, one duplicated: 8 distinct addresses.
    assert_eq!(run.mailboxes, Some(8));
    assert_eq!(
        run.extract_ts.map(|t| t.to_rfc3339()).as_deref(),
        Some("2026-11-25T08:00:00+00:00")
    );
    for phase in ["download", "read_stage", "build", "diff", "publish"] {
        assert!(run.phases.get(phase).is_some(), "phase {phase} timed: {}", run.phases);
    }
    assert_eq!(published_run(&db.pool).await, Some(run.id));
    for id in [
        "810003456125",
        "0012600631",
        "810005678239",
        "810007890345",
        "810018765403",
        "810009621581",
        "810002543170",
    ] {
        assert_claims_equal(&claims_json(&db.pool, id).await, &format!("{id}.json"));
    }
    // Bare RPPS and ADELI find the same documents.
    assert_eq!(
        claims_json(&db.pool, "10003456125").await,
        claims_json(&db.pool, "810003456125").await
    );
    assert_eq!(
        claims_json(&db.pool, "012600631").await,
        claims_json(&db.pool, "0012600631").await
    );
    assert_eq!(claims(&db.pool, "810000000000").await, ClaimsLookup::NotFound);
}

#[tokio::test]
async fn day_two_diff_adds_changes_and_removes_and_ignores_reordering() {
    let db = migrated_db().await;
    import(&db.pool, &day1(), &ImportOptions::default())
        .await
        .expect("day 1");
    let leroy_before = claims_json(&db.pool, "810011273645").await;
    let run = import(&db.pool, &day2(), &lenient()).await.expect("day 2");
    assert_eq!(run.status, "published", "{:?}", run.message);
    assert_eq!(
        (run.added, run.changed, run.removed, run.professionals),
        (Some(1), Some(1), Some(1), Some(17))
    );
    match claims(&db.pool, "810013908172").await {
        ClaimsLookup::Removed { removed_at } => assert_eq!(removed_at.to_rfc3339(), "2026-11-26T08:00:00+00:00"),
        other => panic!("expected removed, got {other:?}"),
    }
    assert!(claims_json(&db.pool, "810015620395").await.contains("0148589999"));
    assert!(claims_json(&db.pool, "810010583929").await.contains("GAUTHIER"));
    // Order-only change: unchanged, so the document stays as first published.
    assert_eq!(claims_json(&db.pool, "810011273645").await, leroy_before);
    // The mailbox set follows the new extract.
    let mailboxes: Vec<String> = sqlx::query_scalar(
        "SELECT address FROM mailbox WHERE run_id = (SELECT mailbox_run_id FROM publication) ORDER BY address",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert!(mailboxes.contains(&"mathieu.gauthier@medecin.mssante.fr".to_owned()));
    assert!(!mailboxes.contains(&"olivier.marchand@medecin.mssante.fr".to_owned()));
    // Only the changed and added professionals got new records.
    let written: i64 = sqlx::query_scalar("SELECT count(*) FROM professional_record WHERE run_id = $1")
        .bind(run.id)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(written, 2);
    // Every version stays (the history): the published one of each professional, and the
    // changed one's previous version beside its new one.
    let records: Vec<(String, i64)> =
        sqlx::query_as("SELECT national_id, run_id FROM professional_record ORDER BY national_id, run_id")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    let published: Vec<(String, i64)> =
        sqlx::query_as("SELECT national_id, record_run_id FROM professional ORDER BY national_id")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert!(
        published.iter().all(|p| records.contains(p)),
        "every published record is kept"
    );
    let changed: Vec<i64> = records
        .iter()
        .filter(|(id, _)| id == "810015620395")
        .map(|(_, run)| *run)
        .collect();
    assert_eq!(changed.len(), 2, "the changed professional's two versions: {changed:?}");
    assert_eq!(records.len(), published.len() + 1, "one superseded version, no other");
    assert!(
        records.contains(&("810015620395".to_owned(), run.id.0)),
        "the changed professional's new record"
    );
}

#[tokio::test]
async fn held_run_publishes_nothing_until_approved() {
    let db = migrated_db().await;
    let first = import(&db.pool, &day1(), &ImportOptions::default())
        .await
        .expect("day 1");
    // 1 of 16 RPPS removed (6.25 %) and 1 changed: above the default 1 % / 5 %.
    let held = import(&db.pool, &day2(), &ImportOptions::default())
        .await
        .expect("day 2 runs");
    assert_eq!(held.status, "held");
    let message = held.message.clone().unwrap_or_default();
    assert!(
        message.contains("RPPS: 1 of 16 published professionals removed"),
        "{message}"
    );
    assert_eq!(published_run(&db.pool).await, Some(first.id));
    assert!(matches!(
        claims(&db.pool, "810013908172").await,
        ClaimsLookup::Found { .. }
    ));
    assert_eq!(claims(&db.pool, "810010583929").await, ClaimsLookup::NotFound);
    assert!(!claims_json(&db.pool, "810015620395").await.contains("0148589999"));

    let approved = import::approve(&db.pool, held.id).await.expect("approve");
    assert_eq!(approved.status, "published");
    assert_eq!(published_run(&db.pool).await, Some(held.id));
    assert!(matches!(
        claims(&db.pool, "810013908172").await,
        ClaimsLookup::Removed { .. }
    ));
    assert!(claims_json(&db.pool, "810015620395").await.contains("0148589999"));
    let again = import::approve(&db.pool, held.id).await.unwrap_err();
    assert!(matches!(again, ImportError::NotHeld { .. }), "{again}");
}

#[tokio::test]
async fn force_skips_the_gate_and_a_newer_publish_discards_a_held_run() {
    let db = migrated_db().await;
    import(&db.pool, &day1(), &ImportOptions::default())
        .await
        .expect("day 1");
    let held = import(&db.pool, &day2(), &ImportOptions::default())
        .await
        .expect("held");
    assert_eq!(held.status, "held");
    let same = import(&db.pool, &day2(), &ImportOptions::default())
        .await
        .expect("again");
    assert_eq!(
        same.status, "skipped",
        "same extract as a held run is not imported twice"
    );
    assert!(
        same.message
            .unwrap_or_default()
            .contains(&format!("approve {}", held.id))
    );
    // A forced import of the day-2 extract under another name publishes despite the gate.
    let renamed = copy_dir(&day2());
    let forced = import(
        &db.pool,
        renamed.path(),
        &ImportOptions {
            force: true,
            ..ImportOptions::default()
        },
    )
    .await;
    // Same files, same checksum: skipped as the held one; force applies to the gate only.
    assert_eq!(forced.expect("runs").status, "skipped");
    let edited = copy_dir(&day2());
    append_line(
        &edited.path().join("PS_LibreAcces_Dipl_AutExerc_202611260900.txt"),
        "8|10010583929|810010583929|GAUTHIER|Mathieu|DE|Diplôme d'État|DE99|Autre|||||",
    );
    let forced = import(
        &db.pool,
        edited.path(),
        &ImportOptions {
            force: true,
            ..ImportOptions::default()
        },
    )
    .await
    .expect("forced");
    assert_eq!(forced.status, "published");
    assert!(forced.forced);
    let held_now = runs::get(&db.pool, held.id).await.unwrap().unwrap();
    assert_eq!(held_now.status, "discarded");
    assert!(matches!(
        import::approve(&db.pool, held.id).await,
        Err(ImportError::NotHeld { .. })
    ));
}

fn copy_dir(from: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    dir
}

fn append_line(path: &Path, line: &str) {
    let mut text = std::fs::read_to_string(path).unwrap();
    text.push_str(line);
    text.push('\n');
    std::fs::write(path, text).unwrap();
}

#[tokio::test]
async fn reimporting_the_published_extract_is_skipped() {
    let db = migrated_db().await;
    let first = import(&db.pool, &day1(), &ImportOptions::default())
        .await
        .expect("day 1");
    let second = import(&db.pool, &day1(), &ImportOptions::default())
        .await
        .expect("again");
    assert_eq!(second.status, "skipped");
    assert!(
        second
            .message
            .unwrap_or_default()
            .contains(&format!("published run {}", first.id))
    );
    assert_eq!(published_run(&db.pool).await, Some(first.id));
    assert_eq!(second.lines_read, 0, "a skipped run reads no lines");
}

#[tokio::test]
async fn legacy_52_and_48_column_files_import() {
    let db = migrated_db().await;
    let run = import(&db.pool, &samples().join("legacy-52"), &ImportOptions::default())
        .await
        .expect("52 columns");
    assert_eq!((run.status.as_str(), run.professionals), ("published", Some(4)));
    assert_eq!(run.files[0]["columns"], 52);
    assert_claims_equal(
        &claims_json(&db.pool, "810002917580").await,
        "legacy-52-810002917580.json",
    );
    let db48 = migrated_db().await;
    let run = import(&db48.pool, &samples().join("legacy-48"), &ImportOptions::default())
        .await
        .expect("48 columns");
    assert_eq!((run.status.as_str(), run.professionals), ("published", Some(3)));
    let doc = claims_json(&db48.pool, "0597012345").await;
    assert!(doc.contains(r#""origine":"ADELI""#), "{doc}");
}

#[tokio::test]
async fn missing_column_fails_before_anything_is_written() {
    let db = migrated_db().await;
    let first = import(&db.pool, &day1(), &ImportOptions::default())
        .await
        .expect("day 1");
    let error = import(
        &db.pool,
        &samples().join("damaged/missing-column"),
        &ImportOptions::default(),
    )
    .await
    .unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("\"Code profession\"") && text.contains("PS_LibreAcces_Personne_activite"),
        "{text}"
    );
    let failed = runs::list(&db.pool, 1).await.unwrap().remove(0);
    assert_eq!(failed.status, "failed");
    assert_eq!(failed.message.as_deref(), Some(text.as_str()));
    assert_eq!(failed.lines_read, 0);
    let written: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM professional_record WHERE run_id = $1)
              + (SELECT count(*) FROM mailbox WHERE run_id = $1)
              + (SELECT count(*) FROM run_removal WHERE run_id = $1)
              + (SELECT count(*) FROM import_reject WHERE run_id = $1)",
    )
    .bind(failed.id)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(written, 0, "the failed run wrote no record, mailbox, removal or reject");
    assert_eq!(published_run(&db.pool).await, Some(first.id));
    assert!(matches!(
        claims(&db.pool, "810003456125").await,
        ClaimsLookup::Found { .. }
    ));
}

#[tokio::test]
async fn bad_lines_are_rejected_with_line_numbers_and_counted_against_the_limit() {
    let db = migrated_db().await;
    let bad = samples().join("damaged/bad-lines");
    let error = import(&db.pool, &bad, &ImportOptions::default()).await.unwrap_err();
    assert!(
        matches!(
            error,
            ImportError::TooManyRejects {
                rejected: 2,
                lines: 19,
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("2 of 19 lines rejected"), "{error}");
    assert_eq!(published_run(&db.pool).await, None, "nothing published");
    let failed = runs::list(&db.pool, 1).await.unwrap().remove(0);
    let rejects = runs::rejects(&db.pool, failed.id).await.unwrap();
    let lines: Vec<i64> = rejects.iter().map(|r| r.line).collect();
    assert_eq!(lines, vec![13, 18]);
    assert!(
        rejects[0].reason.contains("expected 56 fields, found 55"),
        "{:?}",
        rejects[0]
    );
    assert!(rejects[1].reason.contains("found 57"), "{:?}", rejects[1]);

    let tolerant = ImportOptions {
        max_reject_pct: 20.0,
        ..ImportOptions::default()
    };
    let run = import(&db.pool, &bad, &tolerant).await.expect("tolerated");
    assert_eq!(
        (run.status.as_str(), run.rejected, run.lines_read),
        ("published", 2, 19)
    );
    assert_eq!(
        claims(&db.pool, "810014037260").await,
        ClaimsLookup::NotFound,
        "its only line was rejected"
    );
    assert!(matches!(
        claims(&db.pool, "810003456125").await,
        ClaimsLookup::Found { .. }
    ));
}

#[tokio::test]
async fn invalid_utf8_fails_with_line_and_column_and_keeps_the_published_generation() {
    let db = migrated_db().await;
    let first = import(&db.pool, &day1(), &ImportOptions::default())
        .await
        .expect("day 1");
    let error = import(
        &db.pool,
        &samples().join("damaged/invalid-utf8"),
        &ImportOptions::default(),
    )
    .await
    .unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("line 3") && text.contains("Prénom d'exercice") && text.contains("UTF-8"),
        "{text}"
    );
    assert_eq!(published_run(&db.pool).await, Some(first.id));
    let doc = claims_json(&db.pool, "810003456125").await;
    assert!(doc.contains("Hélène") || doc.contains("HÉLÈNE"), "{doc}");
}

#[tokio::test]
async fn bom_and_crlf_file_imports_clean_values() {
    let db = migrated_db().await;
    let run = import(&db.pool, &samples().join("bom-crlf"), &ImportOptions::default())
        .await
        .expect("imports");
    assert_eq!(
        (run.status.as_str(), run.professionals, run.rejected),
        ("published", Some(3), 0)
    );
    let doc = claims_json(&db.pool, "810009461723").await;
    assert!(!doc.contains('\r'), "{doc}");
}

#[tokio::test]
async fn zip_and_single_text_file_sources_import_like_the_directory() {
    let db = migrated_db().await;
    let dir = tempfile::tempdir().unwrap();
    let zip_path = dir.path().join("PS_LibreAcces_202611250900.zip");
    common::fixtures::zip_dir(&day1(), &zip_path);
    let run = import(&db.pool, &zip_path, &ImportOptions::default())
        .await
        .expect("zip");
    assert_eq!(
        (run.status.as_str(), run.professionals, run.mailboxes),
        ("published", Some(17), Some(8))
    );
    assert_claims_equal(&claims_json(&db.pool, "810018765403").await, "810018765403.json");

    let db2 = migrated_db().await;
    let txt = day1().join("PS_LibreAcces_Personne_activite_202611250900.txt");
    let run = import(&db2.pool, &txt, &ImportOptions::default()).await.expect("txt");
    assert_eq!(
        (run.status.as_str(), run.professionals, run.mailboxes),
        ("published", Some(17), None)
    );
    let details: i64 = sqlx::query_scalar("SELECT count(*) FROM mailbox")
        .fetch_one(&db2.pool)
        .await
        .unwrap();
    assert_eq!(details, 0, "no mailbox file, no mailboxes");
}

#[tokio::test]
async fn a_url_source_is_downloaded_and_imported() {
    let db = migrated_db().await;
    let dir = tempfile::tempdir().unwrap();
    let zip_path = dir.path().join("archive.zip");
    common::fixtures::zip_dir(&day1(), &zip_path);
    let server = SourceServer::start(
        "PS_LibreAcces_202611250900.zip",
        std::fs::read(&zip_path).unwrap(),
        vec![],
    )
    .await;
    let url = server.url.clone();
    let options = ImportOptions {
        downloader: Some(
            annuaire::download::Downloader::new(annuaire::download::DownloadSettings::default()).expect("a client"),
        ),
        ..ImportOptions::default()
    };
    let run = import::import(&db.pool, &url, &options).await.expect("url import");
    assert_eq!((run.status.as_str(), run.professionals), ("published", Some(17)));
    assert_eq!(run.source, url);
    assert_eq!(
        run.extract_ts.map(|t| t.to_rfc3339()).as_deref(),
        Some("2026-11-25T08:00:00+00:00"),
        "timestamp from Content-Disposition"
    );
    assert_eq!(
        run.checksum.as_deref(),
        Some(sha256_of(&zip_path).as_str()),
        "the checksum of the bytes served"
    );
}

fn sha256_of(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).expect("readable")))
}

/// A caller that hashed the file as it downloaded it gives the checksum, and the import takes
/// it instead of reading the zip again: a deliberately wrong one shows in the run record,
/// which a second hashing would have replaced. Without it, a local file is hashed.
#[tokio::test]
async fn a_known_checksum_is_recorded_without_hashing_the_file_again() {
    let dir = tempfile::tempdir().unwrap();
    let zip_path = dir.path().join("PS_LibreAcces_202611250900.zip");
    common::fixtures::zip_dir(&day1(), &zip_path);
    let given = "0123456789abcdef".repeat(4);
    assert_ne!(given, sha256_of(&zip_path));

    let db = migrated_db().await;
    let options = ImportOptions {
        known_sha256: Some(given.clone()),
        ..ImportOptions::default()
    };
    let run = import(&db.pool, &zip_path, &options).await.expect("import");
    assert_eq!(run.status.as_str(), "published");
    assert_eq!(run.checksum.as_deref(), Some(given.as_str()));

    let other = migrated_db().await;
    let run = import(&other.pool, &zip_path, &ImportOptions::default())
        .await
        .expect("import");
    assert_eq!(run.checksum.as_deref(), Some(sha256_of(&zip_path).as_str()));
}

#[tokio::test]
async fn a_second_concurrent_import_is_refused() {
    let db = migrated_db().await;
    let mut holder = db.pool.acquire().await.unwrap();
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(0x616e_6e75_6169_7265_i64)
        .execute(&mut *holder)
        .await
        .unwrap();
    let error = import(&db.pool, &day1(), &ImportOptions::default()).await.unwrap_err();
    assert!(matches!(error, ImportError::Busy), "{error}");
    assert_eq!(published_run(&db.pool).await, None);
}

/// Imports large enough to train a compression dictionary store records with it, later
/// runs reuse it, and every stored document reads back.
// The generator is behind the default `gen` feature.
#[cfg(feature = "gen")]
#[tokio::test]
async fn generated_extracts_train_and_reuse_a_compression_dictionary() {
    use annuaire::samplegen::{GenOptions, generate};
    let db = migrated_db().await;
    let dir = tempfile::tempdir().unwrap();
    let make = |day| {
        let out = dir.path().join(format!("day{day}"));
        std::fs::create_dir_all(&out).unwrap();
        generate(
            &GenOptions {
                professionals: 6000,
                seed: 3,
                day,
                out_dir: out,
                order: annuaire::samplegen::Order::Grouped,
            },
            &|_| {},
        )
        .unwrap()
        .zip_path
    };
    let day0 = make(0);
    let day1 = make(1);
    let first = import(&db.pool, &day0, &ImportOptions::default()).await.expect("day 0");
    assert_eq!((first.status.as_str(), first.professionals), ("published", Some(6000)));
    let dictionaries: Vec<i64> = sqlx::query_scalar("SELECT run_id FROM compression_dictionary")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    assert_eq!(dictionaries, vec![first.id]);
    let second = import(&db.pool, &day1, &ImportOptions::default()).await.expect("day 1");
    assert_eq!(second.status, "published", "{:?}", second.message);
    assert!(
        second.added.unwrap() > 0 && second.changed.unwrap() > 0 && second.removed.unwrap() > 0,
        "{second:?}"
    );
    let unreused: i64 =
        sqlx::query_scalar("SELECT count(*) FROM professional_record WHERE dictionary_run_id IS DISTINCT FROM $1")
            .bind(first.id)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(unreused, 0, "every record uses the first run's dictionary");
    let ids: Vec<String> = sqlx::query_scalar("SELECT national_id FROM professional WHERE removed_at IS NULL")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    assert_eq!(ids.len() as i64, second.professionals.unwrap());
    for id in ids.iter().step_by(97) {
        let doc: serde_json::Value = serde_json::from_str(&claims_json(&db.pool, id).await).unwrap();
        assert_eq!(doc["SubjectNameID"], id.as_str());
        assert!(!doc["SubjectRefPro"]["exercices"].as_array().unwrap().is_empty());
    }
}

/// An import failing right after taking the lock (here: its run cannot be recorded) must
/// release it: the next import, from this process or another, is not told "busy".
#[tokio::test]
async fn an_import_failing_early_releases_the_lock() {
    let db = migrated_db().await;
    sqlx::query("ALTER TABLE import_run ADD CONSTRAINT test_refuses CHECK (source <> 'refused')")
        .execute(&db.pool)
        .await
        .unwrap();
    let error = import::import(&db.pool, "refused", &ImportOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(error, ImportError::Database(_)), "{error}");
    let other = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect(&db.url)
        .await
        .unwrap();
    let run = import(&other, &day1(), &ImportOptions::default())
        .await
        .expect("not busy");
    assert_eq!(run.status, "published");
}

/// A lock guard dropped without `release` (a panic, a cancelled future) closes its
/// connection, so the lock does not stay held in the pool.
#[tokio::test]
async fn a_dropped_lock_guard_frees_the_lock() {
    use annuaire::store::lock::AdvisoryLock;
    let db = migrated_db().await;
    let guard = AdvisoryLock::try_acquire(&db.pool, 42).await.unwrap().expect("free");
    let other = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&db.url)
        .await
        .unwrap();
    assert!(AdvisoryLock::try_acquire(&other, 42).await.unwrap().is_none(), "held");
    drop(guard);
    common::server::wait_for("the lock to be free", std::time::Duration::from_secs(10), || {
        let other = other.clone();
        async move {
            match AdvisoryLock::try_acquire(&other, 42).await {
                Ok(Some(lock)) => {
                    lock.release().await;
                    true
                }
                _ => false,
            }
        }
    })
    .await;
}

#[tokio::test]
async fn a_change_in_one_file_rebuilds_the_record_from_the_lines_of_all_three() {
    let db = migrated_db().await;
    import(&db.pool, &day1(), &ImportOptions::default())
        .await
        .expect("day 1");
    let id = NationalId::parse("810003456125").unwrap();
    let before = professionals::full_record(&db.pool, &id)
        .await
        .unwrap()
        .expect("published");
    // Only her savoir-faire line changes: her activity and diploma lines are unchanged and
    // must still make her record.
    let changed = copy_dir(&day1());
    let savoir_faire = changed.path().join("PS_LibreAcces_SavoirFaire_202611250900.txt");
    let text = std::fs::read_to_string(&savoir_faire).unwrap();
    assert!(text.contains("SM04|Cardiologie et maladies vasculaires"));
    std::fs::write(
        &savoir_faire,
        text.replace("SM04|Cardiologie et maladies vasculaires", "SM32|Neurologie"),
    )
    .unwrap();
    // Same extract timestamp, other content: the freshness guard would hold it.
    let forced = ImportOptions {
        force: true,
        ..lenient()
    };
    let run = import(&db.pool, changed.path(), &forced).await.expect("day 2");
    assert_eq!(run.status, "published", "{:?}", run.message);
    assert_eq!((run.added, run.changed, run.removed), (Some(0), Some(1), Some(0)));
    let after = professionals::full_record(&db.pool, &id)
        .await
        .unwrap()
        .expect("published");
    assert_eq!(
        after.claims.get(),
        before.claims.get(),
        "the claims come from her unchanged activity lines"
    );
    let codes = |record: &professionals::FullRecord| {
        record.details["savoir_faire"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["code"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(codes(&before), vec!["SM04"]);
    assert_eq!(codes(&after), vec!["SM32"]);
    assert_eq!(after.details["diplomas"], before.details["diplomas"]);
}

#[tokio::test]
async fn an_unwritable_work_directory_fails_the_run_naming_it_and_publishes_nothing() {
    let db = migrated_db().await;
    let first = import(&db.pool, &day1(), &ImportOptions::default())
        .await
        .expect("day 1");
    // A file where the work directory should be: it can be neither created nor written.
    let blocker = tempfile::NamedTempFile::new().unwrap();
    let options = ImportOptions {
        work_dir: blocker.path().join("work"),
        ..lenient()
    };
    let error = import(&db.pool, &day2(), &options).await.expect_err("no work file");
    let message = error.to_string();
    assert!(message.contains("work file"), "{message}");
    assert!(message.contains(&blocker.path().display().to_string()), "{message}");
    assert_eq!(published_run(&db.pool).await, Some(first.id));
}

/// The nice value of a local process, from `/proc/<pid>/stat` (the 19th field, counted
/// after the command name, which may hold spaces).
fn nice_of(pid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("backend's stat");
    let after_name = &stat[stat.rfind(')').expect("command name") + 2..];
    after_name
        .split(' ')
        .nth(16)
        .expect("nice field")
        .parse()
        .expect("a number")
}

#[tokio::test]
async fn an_imports_sessions_plan_without_parallel_workers_and_its_local_backends_are_niced() {
    let db = migrated_db().await;
    let connect = db.pool.connect_options();
    let local = connect.get_socket().is_some();
    let pool = annuaire::store::batch::pool(&connect, 13);
    let mut conn = pool.acquire().await.expect("a batch connection");
    let workers: String = sqlx::query_scalar("SHOW max_parallel_workers_per_gather")
        .fetch_one(&mut *conn)
        .await
        .expect("setting");
    assert_eq!(workers, "0");
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut *conn)
        .await
        .expect("pid");
    if local {
        assert_eq!(nice_of(pid), 13, "the import's backend {pid} runs niced");
        // The serving pool's backends keep their priority.
        let server_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&db.pool)
            .await
            .expect("pid");
        assert_ne!(nice_of(server_pid), 13, "a backend of another pool");
    }
    drop(conn);
    pool.close().await;
}

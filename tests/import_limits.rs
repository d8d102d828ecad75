//! The bounds of the import against a real Postgres: a line over the length cap, a NUL
//! byte and a professional whose document would be over the size limit are each a
//! rejected line with its file and line number, and the rest publishes.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use annuaire::import::{self, GateThresholds, ImportOptions};
use annuaire::national_id::NationalId;
use annuaire::snapshot::{self, Answer};
use annuaire::store::professionals::{self, ClaimsLookup};
use annuaire::store::runs::{self, RunSummary};
use common::{TestDb, migrated_db, samples};

const PA: usize = 7; // Nom d'exercice
const ID_STRUCTURE: usize = 23;
const RAISON_SOCIALE: usize = 24;
const BIG_ID: &str = "810002543170";

fn sample_lines() -> (String, Vec<String>) {
    let path = samples().join("ps-libreacces/PS_LibreAcces_Personne_activite_202611250900.txt");
    let text = std::fs::read_to_string(path).expect("sample");
    let mut lines = text.lines().map(str::to_owned);
    let header = lines.next().expect("header");
    (header, lines.collect())
}

fn file_name(ts: &str) -> String {
    format!("PS_LibreAcces_Personne_activite_{ts}.txt")
}

/// Writes one Personne_activite file holding `lines` into a fresh directory.
fn extract(dir: &Path, ts: &str, lines: &[String]) -> PathBuf {
    let folder = dir.join(ts);
    std::fs::create_dir_all(&folder).expect("dir");
    let (header, _) = sample_lines();
    let mut text = header;
    text.push('\n');
    for line in lines {
        text.push_str(line);
        text.push('\n');
    }
    std::fs::write(folder.join(file_name(ts)), text).expect("write");
    folder
}

fn with_field(line: &str, index: usize, value: &str) -> String {
    let mut fields: Vec<&str> = line.split('|').collect();
    fields[index] = value;
    fields.join("|")
}

fn tolerant() -> ImportOptions {
    ImportOptions {
        max_reject_pct: 100.0,
        gate: GateThresholds {
            max_removed_pct: 100.0,
            max_changed_pct: 100.0,
        },
        ..ImportOptions::default()
    }
}

async fn run(db: &TestDb, path: &Path, options: &ImportOptions) -> RunSummary {
    import::import(&db.pool, path.to_str().expect("utf-8"), options)
        .await
        .expect("import runs")
}

async fn claims(db: &TestDb, id: &str) -> ClaimsLookup {
    professionals::claims(&db.pool, &NationalId::parse(id).expect("id"))
        .await
        .expect("lookup")
}

#[tokio::test]
async fn a_line_over_the_cap_is_rejected_with_its_line_number_and_the_rest_publishes() {
    let db = migrated_db().await;
    let dir = tempfile::tempdir().unwrap();
    let (_, mut lines) = sample_lines();
    lines[3] = with_field(&lines[3], PA, &"X".repeat(5000));
    let options = ImportOptions {
        max_line_bytes: 4096,
        ..tolerant()
    };
    let summary = run(&db, &extract(dir.path(), "202611250900", &lines), &options).await;
    assert_eq!(summary.status, "published");
    assert_eq!(summary.rejected, 1);
    let rejects = runs::rejects(&db.pool, summary.id).await.unwrap();
    assert_eq!(rejects.len(), 1);
    assert_eq!(rejects[0].line, 5, "header is line 1, lines[3] is line 5");
    assert_eq!(rejects[0].reason, "line longer than 4096 bytes");
    assert_eq!(rejects[0].file, file_name("202611250900"));
}

#[tokio::test]
async fn a_64_mb_line_is_rejected_under_the_default_cap() {
    let db = migrated_db().await;
    let dir = tempfile::tempdir().unwrap();
    let (_, lines) = sample_lines();
    let folder = extract(dir.path(), "202611250900", &lines);
    // Appended in pieces: the test does not hold the line either.
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(folder.join(file_name("202611250900")))
        .unwrap();
    let piece = vec![b'Y'; 1 << 20];
    for _ in 0..64 {
        file.write_all(&piece).unwrap();
    }
    file.write_all(b"|\n").unwrap();
    drop(file);
    let summary = run(&db, &folder, &tolerant()).await;
    assert_eq!(summary.status, "published");
    assert_eq!(summary.rejected, 1);
    let rejects = runs::rejects(&db.pool, summary.id).await.unwrap();
    assert_eq!(rejects[0].line, lines.len() as i64 + 2);
    assert_eq!(rejects[0].reason, "line longer than 1048576 bytes");
}

#[tokio::test]
async fn a_nul_byte_line_is_a_reject_with_file_and_line_and_the_import_publishes() {
    let db = migrated_db().await;
    let dir = tempfile::tempdir().unwrap();
    let (_, mut lines) = sample_lines();
    lines[6] = with_field(&lines[6], RAISON_SOCIALE, "CABINET\0NUL");
    // And one with a NUL and the wrong field count: the preview must not carry it either.
    lines[8] = format!("{}\0|extra|", lines[8]);
    let summary = run(&db, &extract(dir.path(), "202611250900", &lines), &tolerant()).await;
    assert_eq!(summary.status, "published", "{:?}", summary.message);
    assert_eq!(summary.rejected, 2);
    let rejects = runs::rejects(&db.pool, summary.id).await.unwrap();
    let found: Vec<(i64, &str)> = rejects.iter().map(|r| (r.line, r.reason.as_str())).collect();
    assert_eq!(found, vec![(8, "contains a NUL byte"), (10, "contains a NUL byte")]);
    assert!(rejects.iter().all(|r| r.file == file_name("202611250900")));
    assert!(rejects[0].content.contains("CABINET\u{FFFD}NUL"), "{:?}", rejects[0]);
}

/// Activity lines for `BIG_ID`, each distinct and under the line cap, whose claims
/// document together is far over 256 KiB.
fn oversized_activities(template: &str) -> Vec<String> {
    (0..120)
        .map(|i| {
            let line = with_field(template, ID_STRUCTURE, &format!("C{i:014}"));
            with_field(&line, RAISON_SOCIALE, &format!("CABINET {i} {}", "Z".repeat(3000)))
        })
        .collect()
}

fn published_ids(lines: &[String]) -> Vec<String> {
    let mut ids: Vec<String> = lines.iter().map(|l| l.split('|').nth(2).unwrap().to_owned()).collect();
    ids.sort();
    ids.dedup();
    ids
}

#[tokio::test]
async fn a_new_professional_over_the_document_limit_is_rejected_and_not_added() {
    let db = migrated_db().await;
    let dir = tempfile::tempdir().unwrap();
    let (_, mut lines) = sample_lines();
    let first_big = lines
        .iter()
        .position(|l| l.contains(BIG_ID))
        .expect("sample has BIG_ID");
    let template = lines[first_big].clone();
    lines.extend(oversized_activities(&template));
    let summary = run(&db, &extract(dir.path(), "202611250900", &lines), &tolerant()).await;
    assert_eq!(summary.status, "published");
    assert_eq!(summary.rejected, 1);
    assert_eq!(summary.gate.as_ref().unwrap()["rpps"]["rejected_documents"], 1);
    let others = published_ids(&lines).len() as i64 - 1;
    assert_eq!(summary.added, Some(others), "the rejected one is not added");
    let rejects = runs::rejects(&db.pool, summary.id).await.unwrap();
    assert_eq!(rejects.len(), 1);
    assert_eq!(rejects[0].line, first_big as i64 + 2);
    assert!(
        rejects[0]
            .reason
            .starts_with(&format!("claims document of {BIG_ID} would be "))
            && rejects[0].reason.ends_with("over the 262144-byte limit"),
        "{:?}",
        rejects[0]
    );
    assert!(
        summary
            .message
            .unwrap_or_default()
            .contains("1 professionals not published")
    );
    assert!(
        matches!(claims(&db, BIG_ID).await, ClaimsLookup::NotFound),
        "new: absent"
    );
}

#[tokio::test]
async fn a_published_professional_over_the_document_limit_keeps_the_previous_version() {
    let db = migrated_db().await;
    let dir = tempfile::tempdir().unwrap();
    let (_, lines) = sample_lines();
    let day1 = run(&db, &extract(dir.path(), "202611250900", &lines), &tolerant()).await;
    assert_eq!(day1.status, "published");
    let ClaimsLookup::Found {
        claims_json: before, ..
    } = claims(&db, BIG_ID).await
    else {
        panic!("{BIG_ID} published on day 1");
    };
    let template = lines.iter().find(|l| l.contains(BIG_ID)).unwrap().clone();
    let mut grown = lines.clone();
    grown.extend(oversized_activities(&template));
    let day2 = run(&db, &extract(dir.path(), "202611260900", &grown), &tolerant()).await;
    assert_eq!(day2.status, "published");
    assert_eq!(day2.rejected, 1);
    assert_eq!((day2.added, day2.changed, day2.removed), (Some(0), Some(0), Some(0)));
    assert_eq!(day2.gate.as_ref().unwrap()["rpps"]["rejected_documents"], 1);
    match claims(&db, BIG_ID).await {
        ClaimsLookup::Found { claims_json, .. } => assert_eq!(claims_json, before, "previous version kept"),
        other => panic!("{BIG_ID}: expected the previous document, got {other:?}"),
    }
    // What is published can be served: every professional answers from the snapshot.
    let snapshot = snapshot::load_full(&db.pool).await.expect("snapshot loads");
    for id in published_ids(&lines) {
        let answer = snapshot.lookup(&NationalId::parse(&id).unwrap()).expect("decompresses");
        assert!(matches!(answer, Answer::Found { .. }), "{id}: {answer:?}");
    }
}

#[tokio::test]
async fn a_published_professional_whose_line_is_rejected_is_kept_not_removed() {
    let db = migrated_db().await;
    let dir = tempfile::tempdir().unwrap();
    let (_, lines) = sample_lines();
    let day1 = run(&db, &extract(dir.path(), "202611250900", &lines), &tolerant()).await;
    assert_eq!(day1.status, "published");
    // A professional with a single line in the sample.
    let ids: Vec<String> = lines.iter().map(|l| l.split('|').nth(2).unwrap().to_owned()).collect();
    let single = ids
        .iter()
        .position(|id| ids.iter().filter(|o| *o == id).count() == 1)
        .expect("one-line professional");
    let ClaimsLookup::Found {
        claims_json: before, ..
    } = claims(&db, &ids[single]).await
    else {
        panic!("published on day 1");
    };
    let mut day2_lines = lines.clone();
    day2_lines[single] = with_field(&lines[single], RAISON_SOCIALE, "NEW\0NAME");
    let day2 = run(&db, &extract(dir.path(), "202611260900", &day2_lines), &tolerant()).await;
    assert_eq!(day2.status, "published");
    assert_eq!((day2.rejected, day2.removed, day2.changed), (1, Some(0), Some(0)));
    assert_eq!(day2.gate.as_ref().unwrap()["rpps"]["rejected_lines"], 1);
    match claims(&db, &ids[single]).await {
        ClaimsLookup::Found { claims_json, .. } => assert_eq!(claims_json, before),
        other => panic!("expected the previous document, got {other:?}"),
    }
}

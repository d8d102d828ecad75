//! Nobody here has a real extract, so nobody knows whether its files are grouped by
//! professional: the same generated directory, written grouped and shuffled, must publish
//! the same documents, on a first import and on the next day's diff.

// The generator is behind the default `gen` feature.
#![cfg(feature = "gen")]

mod common;

use std::path::{Path, PathBuf};

use annuaire::import::{self, ImportOptions};
use annuaire::national_id::NationalId;
use annuaire::samplegen::{GenOptions, Order, generate};
use annuaire::store::professionals;
use annuaire::store::runs::RunSummary;
use common::{lenient, migrated_db};
use sqlx::PgPool;

const PROFESSIONALS: u64 = 2_000;

fn make(dir: &Path, day: u32, order: Order) -> PathBuf {
    let out = dir.join(format!("{}-day{day}", order.as_str()));
    std::fs::create_dir_all(&out).unwrap();
    let options = GenOptions {
        professionals: PROFESSIONALS,
        seed: 5,
        day,
        out_dir: out,
        order,
    };
    generate(&options, &|_| {}).unwrap().zip_path
}

async fn import(pool: &PgPool, source: &Path, options: &ImportOptions) -> RunSummary {
    let run = import::import(pool, source.to_str().unwrap(), options)
        .await
        .expect("imports");
    assert_eq!(run.status, "published", "{source:?}: {:?}", run.message);
    run
}

/// Every professional ever published: (national id, removed, claims document, details).
async fn published(pool: &PgPool) -> Vec<(String, bool, String, serde_json::Value)> {
    let ids: Vec<String> = sqlx::query_scalar("SELECT national_id FROM professional ORDER BY national_id")
        .fetch_all(pool)
        .await
        .unwrap();
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let record = professionals::full_record(pool, &NationalId::parse(&id).unwrap())
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{id}: no record"));
        out.push((
            id,
            record.removed_at.is_some(),
            record.claims.get().to_owned(),
            record.details,
        ));
    }
    out
}

/// The counts a run reports, which both orders must agree on.
fn counts(run: &RunSummary) -> [Option<i64>; 4] {
    [run.professionals, run.added, run.changed, run.removed]
}

#[tokio::test]
async fn grouped_and_shuffled_extracts_publish_the_same_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (grouped_db, shuffled_db) = (migrated_db().await, migrated_db().await);
    for day in [0, 1] {
        let grouped = make(dir.path(), day, Order::Grouped);
        let shuffled = make(dir.path(), day, Order::Shuffled);
        assert_ne!(
            std::fs::read(&grouped).unwrap(),
            std::fs::read(&shuffled).unwrap(),
            "day {day}: the two orders wrote the same zip"
        );
        // Lenient: a small population's day may remove one of its few ADELI professionals.
        let g = import(&grouped_db.pool, &grouped, &lenient()).await;
        let s = import(&shuffled_db.pool, &shuffled, &lenient()).await;
        assert_eq!(counts(&g), counts(&s), "day {day}: {g:?} / {s:?}");
        if day == 1 {
            assert!(
                g.changed.unwrap() > 0 && g.removed.unwrap() > 0,
                "day 1 changed nothing: {g:?}"
            );
        }
        let (a, b) = (published(&grouped_db.pool).await, published(&shuffled_db.pool).await);
        assert!(a.len() as u64 >= PROFESSIONALS, "day {day}: {} published", a.len());
        assert_eq!(a.len(), b.len(), "day {day}: not the same professionals");
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x, y, "day {day}: {} differs between the orders", x.0);
        }
    }
}

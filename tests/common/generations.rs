//! Three published generations for the history, feed, export, webhooks and retention tests:
//! generation 1 is the sample; 2 (the sample's day 2) removes 810013908172 and changes the
//! telephone of 810015620395; 3 (written by `write_day3`) brings 810013908172 back, changes
//! that telephone again, and changes only a diploma of 810003456125.

use std::path::Path;

use annuaire::import;
use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::server::TestServer;
use super::{lenient, samples};

pub const REMOVED: &str = "810013908172";
pub const CHANGED: &str = "810015620395";
pub const DIPLOMA_ONLY: &str = "810003456125";

/// Day 3: day 2's files under a new timestamp, with REMOVED's lines of day 1 back, a new
/// telephone for CHANGED, and one diploma label of DIPLOMA_ONLY reworded.
pub fn write_day3(dir: &Path) {
    let (day1, day2) = (samples().join("ps-libreacces"), samples().join("ps-libreacces-day2"));
    for entry in std::fs::read_dir(&day2).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let mut text = std::fs::read_to_string(day2.join(&name)).unwrap();
        let day1_text = std::fs::read_to_string(day1.join(name.replace("202611260900", "202611250900"))).unwrap();
        for line in day1_text.lines().filter(|l| l.contains(REMOVED)) {
            text.push_str(line);
            text.push('\n');
        }
        let text = text.replace("0148589999", "0148581111").replace(
            "DES Cardiologie et maladies vasculaires",
            "DES de cardiologie et maladies vasculaires",
        );
        std::fs::write(dir.join(name.replace("202611260900", "202611270900")), text).unwrap();
    }
}

/// Day 3 changes 3 professionals of 16: past even the lenient gate's 10 %.
pub fn day3_options() -> import::ImportOptions {
    import::ImportOptions {
        gate: import::GateThresholds {
            max_removed_pct: 50.0,
            max_changed_pct: 50.0,
        },
        ..lenient()
    }
}

pub async fn published_at(pool: &PgPool, run: i64) -> DateTime<Utc> {
    sqlx::query_scalar("SELECT published_at FROM import_run WHERE id = $1 AND status = 'published'")
        .bind(run)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// What the server serves now for each of our professionals: (id, status, body).
pub async fn served(server: &TestServer, key: &str) -> Vec<(String, u16, Vec<u8>)> {
    let mut answers = Vec::new();
    for id in [REMOVED, CHANGED, DIPLOMA_ONLY] {
        let response = server.get(&format!("/v1/claims/{id}"), key).await;
        let status = response.status().as_u16();
        answers.push((id.to_owned(), status, response.bytes().await.unwrap().to_vec()));
    }
    answers
}

pub fn at(instant: DateTime<Utc>) -> String {
    // `+00:00` as `%2B00:00`; the server also takes the `Z` form.
    instant.to_rfc3339().replace('+', "%2B")
}

//! The directory's past, against real Postgres and a real server with three published
//! generations: claims at an instant (`?at=`, `claims --at`), byte for byte what the server
//! served then; each professional's history with its field diffs, and a held run's diff
//! (API and CLI). The generations are described in `common::generations`.

mod common;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use annuaire::http::HookSettings;
use annuaire::import;
use annuaire::keys::{self, Scope};
use common::generations::{CHANGED, DIPLOMA_ONLY, REMOVED, at, day3_options, published_at, served, write_day3};
use common::server::TestServer;
use common::{annuaire_cli as cli, lenient, published_db, samples};

#[tokio::test]
async fn claims_at_an_instant_and_history_across_three_generations() {
    let db = published_db("ps-libreacces").await;
    let pool = db.pool.clone();
    let (_, claims_key) = keys::create(&pool, "idp", &[Scope::Claims]).await.unwrap();
    let (_, search_key) = keys::create(&pool, "admin", &[Scope::Search]).await.unwrap();
    let server = TestServer::start(pool.clone(), HookSettings::default()).await;

    let generation1 = served(&server, &claims_key).await;
    let day2 = samples().join("ps-libreacces-day2");
    import::import(&pool, day2.to_str().unwrap(), &lenient())
        .await
        .expect("day 2");
    server
        .wait_for_status("day 2 to be served", &format!("/v1/claims/{REMOVED}"), &claims_key, 410)
        .await;
    let generation2 = served(&server, &claims_key).await;
    let day3 = tempfile::tempdir().unwrap();
    write_day3(day3.path());
    let day3_options = day3_options();
    let run3 = import::import(&pool, day3.path().to_str().unwrap(), &day3_options)
        .await
        .expect("day 3");
    assert_eq!(run3.status, "published", "{:?}", run3.message);
    server
        .wait_for_body(
            "day 3 to be served",
            &format!("/v1/claims/{CHANGED}"),
            &claims_key,
            "0148581111",
        )
        .await;
    let generation3 = served(&server, &claims_key).await;
    let (p1, p2, p3) = (
        published_at(&pool, 1).await,
        published_at(&pool, 2).await,
        published_at(&pool, 3).await,
    );
    let key = claims_key.clone();

    // Before the first publication: nobody. At each publication and between two: exactly
    // what the server served then, status and bytes.
    let before = server
        .get(
            &format!("/v1/claims/{CHANGED}?at={}", at(p1 - chrono::Duration::seconds(1))),
            &key,
        )
        .await;
    assert_eq!(before.status(), 404);
    assert_eq!(before.headers()["content-type"], "application/problem+json");
    let between = |a: DateTime<Utc>, b: DateTime<Utc>| a + (b - a) / 2;
    for (instant, then) in [
        (p1, &generation1),
        (between(p1, p2), &generation1),
        (p2, &generation2),
        (between(p2, p3), &generation2),
        (p3, &generation3),
        (p3 + chrono::Duration::days(30), &generation3),
    ] {
        for (id, status, body) in then {
            let response = server.get(&format!("/v1/claims/{id}?at={}", at(instant)), &key).await;
            if response.status().as_u16() != *status {
                panic!(
                    "{id} at {instant}: {} {}",
                    response.status(),
                    response.text().await.unwrap()
                );
            }
            if *status == 200 {
                assert_eq!(response.headers()["content-type"], "application/json");
                assert_eq!(
                    &response.bytes().await.unwrap().to_vec(),
                    body,
                    "{id} at {instant}: the bytes served then"
                );
            } else {
                let problem: Value = response.json().await.unwrap();
                assert_eq!(problem["removed_at"], "2026-11-26T08:00:00+00:00", "{problem}");
                assert_eq!(problem["removal_published_at"], json!(p2.to_rfc3339()), "{problem}");
            }
        }
    }
    assert_eq!(generation2[0].1, 410, "the removal was served by generation 2");
    assert_eq!(generation3[0].1, 200, "and the return by generation 3");
    let malformed = server.get(&format!("/v1/claims/{CHANGED}?at=yesterday"), &key).await;
    assert_eq!(malformed.status(), 400);
    let problem: Value = malformed.json().await.unwrap();
    assert!(problem["detail"].as_str().unwrap().contains("RFC 3339"), "{problem}");

    // History: API (search scope) and CLI.
    let history: Value = server
        .get(&format!("/v1/professionals/{CHANGED}/history"), &search_key)
        .await
        .json()
        .await
        .unwrap();
    let versions = history["versions"].as_array().unwrap();
    let summary: Vec<(i64, &str, bool)> = versions
        .iter()
        .map(|v| {
            (
                v["run_id"].as_i64().unwrap(),
                v["change"].as_str().unwrap(),
                v["claims_changed"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![(1, "added", true), (2, "changed", true), (3, "changed", true)]
    );
    let telephone = |v: &Value| -> Vec<(String, Value, Value)> {
        v["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["path"].as_str().unwrap().to_owned(),
                    c["old"].clone(),
                    c["new"].clone(),
                )
            })
            .collect()
    };
    let old_phone = serde_json::from_slice::<Value>(&generation1[1].2).unwrap()["SubjectRefPro"]["exercices"][0]["activities"][0]["telephone"].clone();
    assert_eq!(
        telephone(&versions[1]),
        vec![(
            "/SubjectRefPro/exercices/0/activities/0/telephone".to_owned(),
            old_phone,
            json!("0148589999")
        )]
    );
    assert_eq!(telephone(&versions[2])[0].2, json!("0148581111"));
    let published = versions[1]["published_at"].as_str().unwrap().parse::<DateTime<Utc>>();
    assert_eq!(published.unwrap(), p2);
    assert_eq!(versions[1]["extract_ts"], "2026-11-26T08:00:00Z");

    let removed = cli(&db.url, &["history", REMOVED, "--json"]);
    assert_eq!(
        removed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&removed.stderr)
    );
    let removed: Value = serde_json::from_slice(&removed.stdout).unwrap();
    let changes: Vec<&str> = removed["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["change"].as_str().unwrap())
        .collect();
    assert_eq!(changes, ["added", "removed", "added"]);

    // A diploma alone: the record changed, the claims did not.
    let diploma = cli(&db.url, &["history", DIPLOMA_ONLY]);
    let text = String::from_utf8_lossy(&diploma.stdout);
    assert_eq!(diploma.status.code(), Some(0));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].contains("added") && lines[1].contains("record only: claims unchanged"),
        "{text}"
    );
    assert_eq!(generation2[2].2, generation3[2].2, "the claims served did not change");

    // `claims --at`: the bytes, and the exit statuses.
    let out = cli(&db.url, &["claims", CHANGED, "--at", &between(p1, p2).to_rfc3339()]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stdout, [generation1[1].2.as_slice(), b"\n"].concat());
    let out = cli(&db.url, &["claims", REMOVED, "--at", &between(p2, p3).to_rfc3339()]);
    assert_eq!(out.status.code(), Some(5), "removed by then");
    let out = cli(&db.url, &["claims", CHANGED, "--at", "2000-01-01"]);
    assert_eq!(out.status.code(), Some(4), "not published then");
    assert_eq!(cli(&db.url, &["history", "810000000000"]).status.code(), Some(4));
    server.stop().await;
}

/// A held run's diff, before approval: who it would remove and change, with the fields,
/// counted as the run record counts them; through the API and the CLI.
#[tokio::test]
async fn a_held_runs_diff_names_who_it_removes_and_changes() {
    let db = published_db("ps-libreacces").await;
    let pool = db.pool.clone();
    let day2 = samples().join("ps-libreacces-day2");
    let held = import::import(&pool, day2.to_str().unwrap(), &import::ImportOptions::default())
        .await
        .expect("day 2 runs");
    assert_eq!(held.status, "held", "the default gate holds day 2");
    let (_, admin_key) = keys::create(&pool, "admin", &[Scope::Admin]).await.unwrap();
    let (_, search_key) = keys::create(&pool, "search", &[Scope::Search]).await.unwrap();
    let server = TestServer::start(pool.clone(), HookSettings::default()).await;
    let run = held.id.0;

    let get = |query: String| {
        let (server, key) = (&server, admin_key.clone());
        async move {
            let response = server.get(&format!("/v1/imports/{run}/diff{query}"), &key).await;
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let (status, removed) = get("?kind=removed".to_owned()).await;
    assert_eq!(status, 200, "{removed}");
    assert_eq!(removed["status"], "held");
    assert_eq!(removed["kind"], "removed");
    assert_eq!(
        removed["counts"],
        json!({"added": held.added, "changed": held.changed, "removed": held.removed}),
        "the run record's counts"
    );
    let item = &removed["items"][0];
    assert_eq!(
        (
            item["national_id"].as_str(),
            item["family_name"].as_str(),
            item["given_name"].as_str()
        ),
        (Some(REMOVED), Some("MARCHAND"), Some("Olivier"))
    );
    assert_eq!(removed["total"], json!(held.removed));

    let (_, changed) = get("?kind=changed&per_page=1".to_owned()).await;
    assert_eq!(changed["total"], json!(held.changed));
    assert_eq!(changed["items"].as_array().unwrap().len(), 1, "one per page");
    let all_changed: Vec<Value> = {
        let mut all = Vec::new();
        for page in 1..=held.changed.unwrap() {
            let (_, p) = get(format!("?kind=changed&per_page=1&page={page}")).await;
            all.extend(p["items"].as_array().unwrap().iter().cloned());
        }
        all
    };
    let phone = all_changed
        .iter()
        .find(|i| i["national_id"] == CHANGED)
        .expect("the changed professional is listed");
    assert_eq!(phone["claims_changed"], true);
    assert_eq!(
        phone["changes"][0]["path"],
        "/SubjectRefPro/exercices/0/activities/0/telephone"
    );
    assert_eq!(phone["changes"][0]["new"], "0148589999");
    let (_, past_end) = get(format!("?kind=changed&page={}", held.changed.unwrap() + 1)).await;
    assert_eq!(past_end["items"], json!([]));

    for (query, status) in [("?kind=moved", 400), ("?per_page=501", 400), ("?page=0", 400)] {
        assert_eq!(get(query.to_owned()).await.0, status, "{query}");
    }
    let nowhere = server.get("/v1/imports/999/diff", &admin_key).await;
    assert_eq!(nowhere.status(), 404);
    assert_eq!(
        server
            .get(&format!("/v1/imports/{run}/diff"), &search_key)
            .await
            .status(),
        403,
        "an admin route"
    );

    let out = cli(&db.url, &["imports", "diff", &run.to_string(), "--kind", "removed"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains(&format!("{REMOVED}  MARCHAND Olivier")), "{text}");
    let out = cli(&db.url, &["imports", "diff", &run.to_string(), "--json"]);
    let pages: Value = serde_json::from_slice(&out.stdout).unwrap();
    let kinds: Vec<&str> = pages
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["removed", "changed", "added"]);
    server.stop().await;
}

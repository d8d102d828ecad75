//! The feed over three published generations (see `common::generations`): paged while an
//! import runs, every change once, in order, with no gap.

mod common;

use serde_json::{Value, json};

use annuaire::http::HookSettings;
use annuaire::import;
use annuaire::keys::{self, Scope};
use common::generations::{CHANGED, DIPLOMA_ONLY, REMOVED, day3_options, write_day3};
use common::server::TestServer;
use common::{annuaire_cli as cli, lenient, published_db, samples};

/// The feed, paged two at a time from the first generation while the third is imported,
/// gives every change of the three runs' diffs once, in order, with no gap.
#[tokio::test]
async fn the_feed_pages_every_change_once_while_an_import_runs() {
    let db = published_db("ps-libreacces").await;
    let pool = db.pool.clone();
    let day2 = samples().join("ps-libreacces-day2");
    import::import(&pool, day2.to_str().unwrap(), &lenient())
        .await
        .expect("day 2");
    let (_, feed_key) = keys::create(&pool, "downstream", &[Scope::Feed]).await.unwrap();
    let (_, admin_key) = keys::create(&pool, "admin", &[Scope::Admin]).await.unwrap();
    let server = TestServer::start(pool.clone(), HookSettings::default()).await;

    let page = |since: String| {
        let (server, key) = (&server, feed_key.clone());
        async move {
            let response = server.get(&format!("/v1/changes?limit=2&since={since}"), &key).await;
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.unwrap()
        }
    };
    let mut seen: Vec<(i64, String, String)> = Vec::new();
    let mut since = String::new();
    let take = |page: &Value, seen: &mut Vec<(i64, String, String)>| {
        for c in page["changes"].as_array().unwrap() {
            seen.push((
                c["run_id"].as_i64().unwrap(),
                c["national_id"].as_str().unwrap().to_owned(),
                c["change"].as_str().unwrap().to_owned(),
            ));
        }
        page["changes"].as_array().unwrap().len()
    };
    // A few pages, then the import starts and the paging goes on meanwhile.
    for _ in 0..3 {
        let p = page(since.clone()).await;
        take(&p, &mut seen);
        since = p["next"].as_str().unwrap().to_owned();
    }
    let day3 = tempfile::tempdir().unwrap();
    write_day3(day3.path());
    let importing = {
        let (pool, dir) = (pool.clone(), day3.path().to_owned());
        tokio::spawn(async move {
            let options = day3_options();
            import::import(&pool, dir.to_str().unwrap(), &options).await
        })
    };
    loop {
        let p = page(since.clone()).await;
        let n = take(&p, &mut seen);
        since = p["next"].as_str().unwrap().to_owned();
        if n == 0 && importing.is_finished() {
            break;
        }
    }
    assert_eq!(importing.await.unwrap().unwrap().status, "published");
    // Once more, now that the import is done: nothing it published was skipped.
    let p = page(since.clone()).await;
    take(&p, &mut seen);
    assert_eq!(p["next"], json!(since), "an empty page keeps the cursor");
    assert_eq!(p["changes"], json!([]));

    // The union of the three runs' diffs, read through the diff route.
    let mut expected = Vec::new();
    for run in 1..=3i64 {
        for kind in ["added", "changed", "removed"] {
            let diff: Value = server
                .get(&format!("/v1/imports/{run}/diff?kind={kind}&per_page=500"), &admin_key)
                .await
                .json()
                .await
                .unwrap();
            for item in diff["items"].as_array().unwrap() {
                expected.push((run, item["national_id"].as_str().unwrap().to_owned(), kind.to_owned()));
            }
        }
    }
    expected.sort();
    assert_eq!(seen, expected, "every change once, in (run, national id) order");
    assert!(
        seen.iter()
            .any(|(run, id, change)| *run == 3 && id == REMOVED && change == "added")
    );

    // claims_changed: the diploma-only change of run 3 is not a claims change.
    let all: Value = server
        .get("/v1/changes?limit=10000", &feed_key)
        .await
        .json()
        .await
        .unwrap();
    let flags: Vec<(String, bool)> = all["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["run_id"] == 3 && c["change"] == "changed")
        .map(|c| {
            (
                c["national_id"].as_str().unwrap().to_owned(),
                c["claims_changed"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        flags,
        vec![(DIPLOMA_ONLY.to_owned(), false), (CHANGED.to_owned(), true)]
    );

    for (query, status) in [("?limit=10001", 400), ("?limit=0", 400), ("?since=nonsense", 400)] {
        assert_eq!(
            server.get(&format!("/v1/changes{query}"), &feed_key).await.status(),
            status,
            "{query}"
        );
    }
    assert_eq!(
        server.get("/v1/imports", &feed_key).await.status(),
        403,
        "feed is not admin"
    );
    let out = cli(&db.url, &["changes", "--since", &since, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let cli_page: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cli_page["changes"], json!([]));
    server.stop().await;
}

//! Search against a real Postgres and a real tantivy index: accents, typos, prefixes,
//! identifiers, filters, facets, removal, the incremental update, the API and the CLI.

mod common;

use std::sync::Arc;

use annuaire::import;
use annuaire::keys::{self, Scope};
use annuaire::search::{self, SearchIndex, SearchRequest};
use common::{lenient, published_db, samples, test_db};

fn find(index: &SearchIndex, q: &str, filters: &[(&str, &str)]) -> Vec<String> {
    let request = SearchRequest {
        q: q.to_owned(),
        filters: filters
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        page: 1,
        per_page: 20,
        facets: false,
    };
    index
        .search(&request)
        .expect("search runs")
        .results
        .into_iter()
        .map(|h| h.national_id)
        .collect()
}

#[tokio::test]
async fn names_forgive_accents_case_typos_and_prefixes_and_ids_come_first() {
    let db = published_db("ps-libreacces").await;
    let pool = db.pool.clone();
    let dir = tempfile::tempdir().unwrap();
    let index = search::rebuild(&pool, dir.path()).await.expect("index built");
    assert_eq!(index.generation(), Some(annuaire::store::RunId(1)));
    for q in [
        "helene",
        "Hélène",
        "lefevre",
        "LEFÈVRE",
        "helene lefevre",
        "lefevr",
        "hel",
        "lefe hel",
        "hel lefe",
    ] {
        assert_eq!(
            find(&index, q, &[]).first().map(String::as_str),
            Some("810003456125"),
            "{q}"
        );
    }
    assert_eq!(
        find(&index, "dupnot", &[]).first().map(String::as_str),
        Some("810009621581"),
        "typo"
    );
    assert_eq!(
        find(&index, "pierre dup", &[]).first().map(String::as_str),
        Some("810009621581"),
        "typeahead"
    );
    assert_eq!(
        find(&index, "dup pie", &[]).first().map(String::as_str),
        Some("810009621581"),
        "every word a prefix"
    );
    assert_eq!(find(&index, "810003456125", &[]), vec!["810003456125"], "national id");
    assert_eq!(
        find(&index, "10003456125", &[]).first().map(String::as_str),
        Some("810003456125"),
        "bare RPPS"
    );
    assert_eq!(
        find(&index, "012600631", &[]).first().map(String::as_str),
        Some("0012600631"),
        "bare ADELI"
    );
    assert!(
        find(&index, "jf.dubois@medecin.mssante.fr", &[]).contains(&"810018765403".to_owned()),
        "mailbox"
    );
    assert_eq!(
        find(&index, "", &[("departement", "2A")]),
        vec!["810005678239"],
        "Corsica from the commune code"
    );
    assert_eq!(
        find(&index, "", &[("departement", "974")]),
        vec!["810014037260"],
        "overseas"
    );
    assert!(
        find(&index, "", &[("profession", "21")]).contains(&"810018765403".to_owned()),
        "second profession"
    );
    assert!(find(&index, "((( AND \"", &[]).len() <= 17, "any query shape answers");

    let all = index
        .search(&SearchRequest {
            q: String::new(),
            filters: vec![],
            page: 1,
            per_page: 100,
            facets: true,
        })
        .unwrap();
    assert_eq!(all.total, 17);
    let professions = &all.facets["profession"];
    let medecins = professions
        .iter()
        .find(|f| f.value == "10")
        .map(|f| (f.label.as_deref(), f.count));
    assert_eq!(medecins, Some((Some("Médecin"), 7)), "{professions:?}");
    let mut physicians = find(&index, "", &[("profession", "médec")]);
    physicians.sort_unstable();
    let mut by_code = find(&index, "", &[("profession", "10")]);
    by_code.sort_unstable();
    assert_eq!(
        (physicians.len(), physicians),
        (7, by_code),
        "a label typed in part filters as its code"
    );
    assert!(
        all.facets["departement"]
            .iter()
            .any(|f| f.value == "2A" && f.count == 1)
    );
    let page2 = index
        .search(&SearchRequest {
            q: String::new(),
            filters: vec![],
            page: 2,
            per_page: 10,
            facets: true,
        })
        .unwrap();
    assert_eq!((page2.total, page2.results.len()), (17, 7));
}

/// Every hit of `q` walked page by page (`per_page` a page), and each page's total.
fn walk(index: &SearchIndex, q: &str, per_page: usize, facets: bool) -> (Vec<String>, Vec<usize>) {
    let mut hits = Vec::new();
    let mut totals = Vec::new();
    for page in 1..=100 {
        let found = index
            .search(&SearchRequest {
                q: q.to_owned(),
                filters: vec![],
                page,
                per_page,
                facets,
            })
            .expect("search runs");
        totals.push(found.total);
        if found.results.is_empty() {
            break;
        }
        hits.extend(found.results.into_iter().map(|h| h.national_id));
    }
    (hits, totals)
}

#[tokio::test]
async fn one_exact_total_whatever_the_options_and_typos_only_when_nothing_else_matches() {
    let db = published_db("ps-libreacces").await;
    let dir = tempfile::tempdir().unwrap();
    let index = search::rebuild(&db.pool, dir.path()).await.expect("index built");
    // `marc` names Marc BERTHIER exactly and MARCHAND by a prefix: a page of one comes
    // from the exact names, and the total still counts them all.
    for q in ["marc", "mari", "dupont", "pierre dup", "lefe hel", "dupnot", "lefevbre"] {
        for per_page in [1, 2, 20] {
            let (hits, totals) = walk(&index, q, per_page, false);
            let (faceted, faceted_totals) = walk(&index, q, per_page, true);
            assert_eq!(hits, faceted, "{q} by {per_page}");
            assert!(
                totals.iter().chain(&faceted_totals).all(|total| *total == hits.len()),
                "{q} by {per_page}: {totals:?} {faceted_totals:?} for {} hits",
                hits.len()
            );
        }
    }
    let (marc, _) = walk(&index, "marc", 1, false);
    assert!(marc.len() >= 2 && marc[0] == "0012600631", "{marc:?}");
    // SANTONI Marie-Ange starts with `mari`; Marc BERTHIER, a typo away, does not join.
    let (mari, _) = walk(&index, "mari", 20, true);
    assert!(mari.contains(&"810005678239".to_owned()), "{mari:?}");
    assert!(!mari.contains(&"0012600631".to_owned()), "{mari:?}");
    // No name is spelt so: the typos, counted exactly.
    for (q, expected) in [("dupnot", "810009621581"), ("lefevbre", "810003456125")] {
        let (hits, totals) = walk(&index, q, 1, false);
        assert_eq!(hits, [expected], "{q}");
        assert_eq!(totals, [1, 1], "{q}");
    }
}

#[tokio::test]
async fn the_index_follows_a_new_generation_incrementally() {
    let db = published_db("ps-libreacces").await;
    let pool = db.pool.clone();
    let dir = tempfile::tempdir().unwrap();
    let index = search::open_or_rebuild(&pool, dir.path()).await.expect("built");
    let day2 = import::import(
        &pool,
        samples().join("ps-libreacces-day2").to_str().unwrap(),
        &lenient(),
    )
    .await
    .unwrap();
    let updated = search::update(&pool, Arc::clone(&index), dir.path())
        .await
        .expect("updated");
    assert!(Arc::ptr_eq(&index, &updated), "updated in place, not rebuilt");
    assert_eq!(updated.generation(), Some(day2.id));
    assert_eq!(find(&updated, "gauthier", &[]), vec!["810010583929"], "added");
    let marchand = find(&updated, "marchand", &[]);
    assert_eq!(marchand, vec!["810013908172"], "removed professionals stay findable");
    assert!(find(&updated, "marchand", &[("removed", "false")]).is_empty());
    assert_eq!(find(&updated, "marchand", &[("removed", "true")]), vec!["810013908172"]);
    assert_eq!(find(&updated, "", &[]).len(), 18);
    // Reopened from disk, the index is the same generation and needs nothing.
    drop(updated);
    drop(index);
    let reopened = search::open_or_rebuild(&pool, dir.path()).await.unwrap();
    assert_eq!(reopened.generation(), Some(day2.id));

    // Labels are those of the generation the index holds, kept on disk beside it.
    assert_eq!(reopened.labels().label("profession", "60"), Some("Infirmier"));
    assert_eq!(
        reopened.labels().label("savoir_faire", "SM54"),
        Some("Médecine générale")
    );
    // The next day renames a label: the last one seen wins, and the labels of codes no
    // changed professional carries stay.
    let day3 = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(samples().join("ps-libreacces-day2")).unwrap() {
        let path = entry.unwrap().path();
        let name = path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace("202611260900", "202611270900");
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("|60|Infirmier|", "|60|Infirmier diplômé d'État|");
        std::fs::write(day3.path().join(name), text).unwrap();
    }
    let mut options = lenient();
    options.gate.max_changed_pct = 100.0;
    let day3_run = import::import(&pool, day3.path().to_str().unwrap(), &options)
        .await
        .unwrap();
    let updated = search::update(&pool, Arc::clone(&reopened), dir.path()).await.unwrap();
    assert_eq!(updated.generation(), Some(day3_run.id));
    let labels = updated.labels();
    assert_eq!(labels.label("profession", "60"), Some("Infirmier diplômé d'État"));
    assert_eq!(labels.label("profession", "10"), Some("Médecin"));
    // A filter takes the new label typed in part.
    let nurses = find(&updated, "", &[("profession", "60")]);
    assert!(!nurses.is_empty());
    assert_eq!(find(&updated, "", &[("profession", "diplome d'etat")]), nurses);
}

#[tokio::test]
async fn search_api_and_full_record() {
    use annuaire::http::HookSettings;
    use annuaire::server::ServerConfig;
    let db = published_db("ps-libreacces").await;
    let pool = db.pool.clone();
    let search_key = keys::create(&pool, "admin-tool", &[Scope::Search]).await.unwrap().1;
    let claims_key = keys::create(&pool, "idp", &[Scope::Claims]).await.unwrap().1;
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        search_dir: Some(dir.path().to_owned()),
        ..ServerConfig::new(HookSettings::default()).unwrap()
    };
    let server = common::server::TestServer::start_with(pool, config).await;
    server
        .wait_for_status("the index", "/v1/professionals?q=dupont", &search_key, 200)
        .await;
    let found: serde_json::Value = server
        .get("/v1/professionals?q=dupont&per_page=5", &search_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(found["results"][0]["national_id"], "810009621581");
    assert!(found["facets"]["profession"].is_array());
    let typeahead: serde_json::Value = server
        .get("/v1/professionals?q=dupont&per_page=5&facets=false", &search_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(typeahead["results"], found["results"], "the same hits");
    assert_eq!(typeahead["facets"], serde_json::json!({}), "no facet counts");
    // One exact total, with facets or without, even when a page of one comes from the
    // exact names alone.
    let mut totals = Vec::new();
    for facets in [true, false] {
        let marc: serde_json::Value = server
            .get(
                &format!("/v1/professionals?q=marc&per_page=1&facets={facets}"),
                &search_key,
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(marc["results"][0]["national_id"], "0012600631");
        assert!(marc.get("total_exact").is_none(), "{marc}");
        totals.push(marc["total"].as_u64());
    }
    assert!(totals[0] >= Some(2) && totals[0] == totals[1], "{totals:?}");
    let filtered: serde_json::Value = server
        .get("/v1/professionals?departement=2A", &search_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(filtered["total"], 1);
    assert_eq!(
        server.get("/v1/professionals?q=dupont", &claims_key).await.status(),
        403
    );
    let record: serde_json::Value = server
        .get("/v1/professionals/810018765403", &search_key)
        .await
        .json()
        .await
        .unwrap();
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(samples().join("expected/810018765403.json")).unwrap()).unwrap();
    assert_eq!(record["claims"], expected);
    assert!(record["details"]["savoir_faire"].as_array().unwrap().len() >= 2);
    assert!(
        record["mailboxes"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("jf.dubois@medecin.mssante.fr"))
    );
    assert!(record["first_seen_at"].is_string() && record["removed_at"].is_null());
    assert_eq!(
        server.get("/v1/professionals/810000000000", &search_key).await.status(),
        404
    );
    server.stop().await;
}

#[tokio::test]
async fn search_on_the_command_line() {
    let db = test_db().await;
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(common::cargo_bin())
            .args(args)
            .env("DATABASE_URL", &db.url)
            .env("ANNUAIRE_HOME", home.path())
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    };
    assert!(
        run(&["import", &samples().join("ps-libreacces").to_string_lossy()])
            .status
            .success()
    );
    let out = run(&["search", "lefevre", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let found: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(found["results"][0]["national_id"], "810003456125");
    assert!(found.get("total_exact").is_none(), "the total is always exact: {found}");
    // Absurd paging is refused with the bound, not an abort of the process.
    let out = run(&["search", "bertrand", "--page", "1000000000"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("page"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["search", "--departement", "974"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("1 professionals") && text.contains("810014037260"),
        "{text}"
    );
}

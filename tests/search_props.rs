//! Property tests of the search query builder, against a real index built from a real
//! store: random Unicode queries, filters and paging never panic, and never answer 500.
//! - at the index: a request within the bounds always gets its results, one outside them
//!   is refused by `validate` with its reason, and even an unchecked request never panics;
//! - through the API: any query string gets a 200 or a 400 problem, never a 5xx;
//! - the result is one set: words of the sample's names, cut short or a letter off, get
//!   the same hits and one exact total on every page with facets or without, and typo
//!   hits only when no hit matches without one.

mod common;

use std::sync::Arc;

use annuaire::http::HookSettings;
use annuaire::keys::{self, Scope};
use annuaire::search::filters::FILTERS;
use annuaire::search::{self, SearchIndex, SearchLimits, SearchRequest};
use annuaire::server::ServerConfig;
use common::published_db;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// Text as users and attackers type it: names with accents, query syntax tantivy's own
/// parser would choke on, any Unicode (controls, combining marks, emoji, RTL), digits,
/// and lengths on both sides of the bounds.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-zA-ZéèêëàçôîïÉÈ' -]{0,40}",
        2 => r#"[a-z0-9 *?~^:"()\[\]{}+\-!/\\&|<>=@.]{0,60}"#,
        2 => any::<String>(),
        1 => "\\PC{0,200}",
        1 => proptest::collection::vec("[a-z]{1,3}", 30..40).prop_map(|words| words.join(" ")),
        1 => ("[a-z]{1,4}", 990usize..1010).prop_map(|(word, n)| word.repeat(n).chars().take(n).collect()),
        1 => "[0-9]{1,14}",
    ]
}

fn filter_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(FILTERS.to_vec()).prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

fn paging() -> impl Strategy<Value = usize> {
    prop_oneof![
        4 => 0usize..120,
        1 => 0usize..20_000,
        1 => any::<usize>(),
        1 => Just(usize::MAX),
    ]
}

fn request() -> impl Strategy<Value = SearchRequest> {
    (
        text(),
        proptest::collection::vec((filter_name(), text()), 0..4),
        paging(),
        paging(),
        any::<bool>(),
    )
        .prop_map(|(q, filters, page, per_page, facets)| SearchRequest {
            q,
            filters,
            page,
            per_page,
            facets,
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_request_within_bounds_gets_results_and_none_panics() {
    let db = published_db("ps-libreacces").await;
    let pool = db.pool.clone();
    let dir = tempfile::tempdir().unwrap();
    let index: Arc<SearchIndex> = search::rebuild(&pool, dir.path()).await.expect("index");
    let limits = SearchLimits::default();
    let mut runner = TestRunner::new(Config {
        cases: 3000,
        failure_persistence: None,
        ..Config::default()
    });
    let answered = std::cell::Cell::new(0u32);
    let refused = std::cell::Cell::new(0u32);
    tokio::task::block_in_place(|| {
        runner
            .run(&request(), |request| {
                match request.validate(&limits) {
                    Ok(()) => {
                        let response = index.search(&request);
                        prop_assert!(response.is_ok(), "{request:?} within bounds failed: {response:?}");
                        let response = response.unwrap();
                        prop_assert!(response.results.len() <= request.per_page);
                        prop_assert!(response.results.len() <= response.total);
                        answered.set(answered.get() + 1);
                    }
                    Err(reason) => {
                        prop_assert!(!reason.to_string().is_empty());
                        // Unchecked, the index still answers or refuses: it never panics.
                        let _ = index.search(&request);
                        refused.set(refused.get() + 1);
                    }
                }
                Ok(())
            })
            .unwrap_or_else(|failure| panic!("{failure}"));
    });
    // The strategies reach both sides of the bounds, or the test proves little.
    let (answered, refused) = (answered.get(), refused.get());
    assert!(
        answered > 200 && refused > 200,
        "answered {answered}, refused {refused}"
    );
}

/// Every byte but unreserved ASCII as `%XX` (RFC 3986), as a browser sends a form field.
fn percent_encoded(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A query string of known and unknown parameters with random values, percent-encoded
/// as a browser would, plus raw bytes that are not UTF-8 once decoded.
fn query_string() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        6 => proptest::sample::select(
            [&FILTERS[..], &["q", "page", "per_page", "facets", "structure"]].concat()
        )
        .prop_map(str::to_owned),
        1 => "[a-z_]{1,10}",
    ];
    let value = prop_oneof![
        4 => text().prop_map(|v| percent_encoded(&v)),
        1 => paging().prop_map(|n| n.to_string()),
        1 => Just("-1".to_owned()),
        1 => Just("%FF%FE".to_owned()),
        1 => Just("%00".to_owned()),
    ];
    proptest::collection::vec((name, value), 0..6).prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("&")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_query_string_gets_results_or_a_400_problem_never_a_5xx() {
    let db = published_db("ps-libreacces").await;
    let pool = db.pool.clone();
    let key = keys::create(&pool, "admin-tool", &[Scope::Search]).await.unwrap().1;
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        search_dir: Some(dir.path().to_owned()),
        ..ServerConfig::new(HookSettings::default()).unwrap()
    };
    let server = common::server::TestServer::start_with(pool, config).await;
    server
        .wait_for_status("the index", "/v1/professionals?q=dupont", &key, 200)
        .await;
    let handle = tokio::runtime::Handle::current();
    let mut runner = TestRunner::new(Config {
        cases: 400,
        failure_persistence: None,
        ..Config::default()
    });
    let statuses = std::cell::RefCell::new(std::collections::BTreeMap::<u16, u32>::new());
    tokio::task::block_in_place(|| {
        runner
            .run(&query_string(), |query| {
                let (status, content_type, body) = handle.block_on(async {
                    let response = server.get(&format!("/v1/professionals?{query}"), &key).await;
                    let status = response.status().as_u16();
                    let content_type = response
                        .headers()
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    (status, content_type, response.text().await.unwrap_or_default())
                });
                *statuses.borrow_mut().entry(status).or_default() += 1;
                let json: serde_json::Value = serde_json::from_str(&body)
                    .map_err(|e| TestCaseError::fail(format!("?{query}: {status} body is not JSON ({e}): {body}")))?;
                match status {
                    200 => prop_assert!(json["results"].is_array() && json["total"].is_u64(), "?{query}: {body}"),
                    400 => {
                        prop_assert_eq!(&content_type, "application/problem+json", "?{}", query);
                        prop_assert!(json["detail"].is_string(), "?{query}: {body}");
                    }
                    _ => prop_assert!(false, "?{query} answered {status}: {body}"),
                }
                Ok(())
            })
            .unwrap_or_else(|failure| panic!("{failure}"));
    });
    let statuses = statuses.into_inner();
    assert!(
        statuses.get(&200).copied().unwrap_or(0) > 50 && statuses.get(&400).copied().unwrap_or(0) > 50,
        "{statuses:?}"
    );
    server.stop().await;
}

/// Words of the sample's names and places, as the index folds them.
const SAMPLE_WORDS: &[&str] = &[
    "berthier",
    "marc",
    "rousseau",
    "nathalie",
    "lefevre",
    "helene",
    "girard",
    "camille",
    "santoni",
    "marie",
    "ange",
    "roche",
    "julien",
    "lambert",
    "hugo",
    "morel",
    "lucas",
    "fontaine",
    "claire",
    "chevalier",
    "emilie",
    "dupont",
    "pierre",
    "leroy",
    "antoine",
    "garnier",
    "thomas",
    "marchand",
    "olivier",
    "payet",
    "sandrine",
    "bernard",
    "sophie",
    "dubois",
    "jean",
    "francois",
    "paris",
    "lyon",
    "rue",
    "medecin",
    "infirmier",
];

/// A word as typed: whole, cut short (typeahead), one letter replaced, or two swapped.
fn typed_word() -> impl Strategy<Value = String> {
    (
        proptest::sample::select(SAMPLE_WORDS),
        0u8..4,
        any::<proptest::sample::Index>(),
        b'a'..=b'z',
    )
        .prop_map(|(word, edit, at, letter)| {
            let mut letters: Vec<u8> = word.bytes().collect();
            let i = at.index(letters.len());
            match edit {
                1 => letters.truncate(i.max(1)),
                2 => letters[i] = letter,
                3 if i + 1 < letters.len() => letters.swap(i, i + 1),
                _ => {}
            }
            String::from_utf8(letters).expect("ASCII words")
        })
}

/// Whether a hit of a query of `words` words (letters only) took a typo: each word that
/// matched without one adds 100 to the score, a typo nothing (`search::query`).
fn took_a_typo(score: f32, words: usize) -> bool {
    (score as u32 % 10_000) / 100 != words as u32
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_set_of_hits_and_one_exact_total_whatever_the_page_and_the_facets() {
    let db = published_db("ps-libreacces").await;
    let dir = tempfile::tempdir().unwrap();
    let index: Arc<SearchIndex> = search::rebuild(&db.pool, dir.path()).await.expect("index");
    let mut runner = TestRunner::new(Config {
        cases: 400,
        failure_persistence: None,
        ..Config::default()
    });
    let queries = (proptest::collection::vec(typed_word(), 1..4), 1usize..6);
    let (typos_only, without_typos) = (std::cell::Cell::new(0u32), std::cell::Cell::new(0u32));
    tokio::task::block_in_place(|| {
        runner
            .run(&queries, |(words, per_page)| {
                let q = words.join(" ");
                let walk = |facets: bool| {
                    let mut hits = Vec::new();
                    let mut totals = Vec::new();
                    for page in 1..=20 {
                        let found = index
                            .search(&SearchRequest {
                                q: q.clone(),
                                filters: vec![],
                                page,
                                per_page,
                                facets,
                            })
                            .expect("within bounds");
                        totals.push(found.total);
                        if found.results.is_empty() {
                            break;
                        }
                        hits.extend(found.results.into_iter().map(|h| (h.national_id, h.score)));
                    }
                    (hits, totals)
                };
                let (hits, totals) = walk(false);
                let (faceted, faceted_totals) = walk(true);
                prop_assert_eq!(&hits, &faceted, "{} by {}", q, per_page);
                prop_assert!(
                    totals.iter().chain(&faceted_totals).all(|total| *total == hits.len()),
                    "{q} by {per_page}: totals {totals:?} and {faceted_totals:?} for {} hits",
                    hits.len()
                );
                let typos = hits
                    .iter()
                    .filter(|(_, score)| took_a_typo(*score, words.len()))
                    .count();
                prop_assert!(
                    typos == 0 || typos == hits.len(),
                    "{q}: {typos} of {} hits took a typo: {hits:?}",
                    hits.len()
                );
                if typos > 0 {
                    typos_only.set(typos_only.get() + 1);
                } else if !hits.is_empty() {
                    without_typos.set(without_typos.get() + 1);
                }
                Ok(())
            })
            .unwrap_or_else(|failure| panic!("{failure}"));
    });
    // Both kinds of result are reached, or the test proves little.
    let (typos_only, without_typos) = (typos_only.get(), without_typos.get());
    assert!(
        typos_only > 10 && without_typos > 50,
        "typos only {typos_only}, without typos {without_typos}"
    );
}

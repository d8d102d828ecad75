//! The admin web page in a real headless Chromium: sign in with an admin key, search as
//! you type, open a professional and read the claims document the IdP receives, approve a
//! held import.

mod common;

use annuaire::http::HookSettings;
use annuaire::import::{self, ImportOptions};
use annuaire::keys::{self, Scope};
use annuaire::server::ServerConfig;
use common::browser::{self, Browser};
use common::server::TestServer;
use common::{migrated_db, samples};

#[tokio::test]
async fn admin_page_searches_shows_claims_and_approves_a_held_run() {
    if !browser::installed() {
        return;
    }
    let db = migrated_db().await;
    let pool = db.pool.clone();
    import::import(
        &pool,
        samples().join("ps-libreacces").to_str().unwrap(),
        &ImportOptions::default(),
    )
    .await
    .unwrap();
    let held = import::import(
        &pool,
        samples().join("ps-libreacces-day2").to_str().unwrap(),
        &ImportOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(held.status, "held");
    let admin = keys::create(&pool, "ops", &[Scope::Admin]).await.unwrap().1;
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        search_dir: Some(dir.path().to_owned()),
        ..ServerConfig::new(HookSettings::default()).unwrap()
    };
    let server = TestServer::start_with(pool.clone(), config).await;
    server
        .wait_for_status("the index", "/v1/professionals?q=x", &admin, 200)
        .await;

    let browser = Browser::start().await;
    browser.goto(&server.url("/")).await;
    browser.type_into("#key", "ann_wrong").await;
    browser.click("#signin-button").await;
    browser
        .wait_until(
            "the refusal",
            "return document.getElementById('signin-error').textContent.includes('refusée')",
        )
        .await;
    browser.eval("document.getElementById('key').value = ''").await;
    browser.type_into("#key", &admin).await;
    browser.click("#signin-button").await;
    browser
        .wait_until(
            "results",
            "return document.querySelectorAll('#results li').length === 17",
        )
        .await;
    browser
        .wait_until(
            "facets",
            "return document.querySelector('#facets a[data-facet=\"profession\"]') !== null",
        )
        .await;

    // Search as you type, forgiving the accent.
    browser.type_into("#q", "lefevre").await;
    browser.wait_until("the match", "const li = document.querySelector('#results li'); return li !== null && li.dataset.id === '810003456125' && document.querySelectorAll('#results li').length === 1").await;
    // Typeahead answers come without facets; once the query settles the facets count its
    // one result (profession 10).
    browser.wait_until("the settled facets", "const counts = [...document.querySelectorAll('#facets a[data-facet=\"profession\"]')].map((a) => a.dataset.value + ':' + a.lastChild.textContent); return !document.getElementById('facets').classList.contains('stale') && counts.join() === '10:1'").await;
    // Codes come with their labels from the extract, in facets and results.
    let labelled = browser
        .eval("return { facet: document.querySelector('#facets a[data-facet=\"profession\"] span').textContent, hit: document.querySelector('#results li').textContent }")
        .await;
    assert_eq!(labelled["facet"], "10 Médecin", "{labelled}");
    assert!(labelled["hit"].as_str().unwrap().contains("10 Médecin"), "{labelled}");
    browser.click("#results li").await;
    browser
        .wait_until(
            "the record",
            "return document.getElementById('claims').textContent.includes('810003456125')",
        )
        .await;
    let heading = browser
        .eval("return document.querySelector('#record-body h3').textContent")
        .await;
    assert_eq!(
        heading, "Profession 10 Médecin (C Civil) — S SM04 Cardiologie et maladies vasculaires",
        "the record shows labels beside codes"
    );
    let address = browser
        .eval("return document.querySelector('#record-body table tr:nth-child(2) td:nth-child(3)').textContent")
        .await;
    assert_eq!(
        address, "900 Route DE PARIS, CS 90401, 01012 BOURG EN BRESSE CEDEX",
        "the street type's label, the postcode once (the bureau cedex carries it)"
    );
    let shown = browser
        .eval("return document.getElementById('claims').textContent")
        .await;
    let document: serde_json::Value = serde_json::from_str(shown.as_str().unwrap()).unwrap();
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(samples().join("expected/810003456125.json")).unwrap()).unwrap();
    assert_eq!(
        document, expected,
        "the page shows the claims document as the IdP receives it"
    );
    let order = browser
        .eval("return Object.keys(JSON.parse(document.getElementById('claims').textContent)).slice(0, 3).join(',')")
        .await;
    assert_eq!(
        order, "SubjectNameID,preferred_username,given_name",
        "in the served key order"
    );
    browser
        .screenshot(&std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("admin-page-record.png"))
        .await;

    // Filter by a facet value: département 2A.
    browser.click("#back").await;
    browser.eval("document.getElementById('q').value = ''").await;
    browser.type_into("#f-departement", "2A").await;
    browser.wait_until("the filter", "const li = document.querySelectorAll('#results li'); return li.length === 1 && li[0].dataset.id === '810005678239'").await;
    // A filter takes a label typed in part: in 2A, no physician, one nurse.
    browser.type_into("#f-profession", "médec").await;
    browser.wait_until("no physician in 2A", "return document.querySelectorAll('#results li').length === 0 && document.getElementById('total').textContent.startsWith('0 ')").await;
    browser.eval("document.getElementById('f-profession').value = ''").await;
    browser.type_into("#f-profession", "INFIRM").await;
    browser.wait_until("the nurse in 2A", "const li = document.querySelectorAll('#results li'); return li.length === 1 && li[0].dataset.id === '810005678239'").await;

    // Approve the held run from the imports view.
    browser.click("#nav-imports").await;
    // The run history, drawn by the page: a group of bars per run, counts in their titles.
    browser
        .wait_until(
            "the chart",
            "return document.querySelectorAll('#runs-chart svg g[data-run]').length === 2",
        )
        .await;
    let chart = browser
        .eval(&format!(
            "return {{ removed: document.querySelector('#runs-chart g[data-run=\"{id}\"] rect.removed title').textContent,
                      build: document.querySelector('#runs-chart g[data-run=\"{id}\"] rect.build') !== null,
                      external: document.querySelectorAll('#runs-chart image, #runs-chart use, #runs-chart foreignObject').length,
                      source: document.getElementById('source').textContent }};",
            id = held.id
        ))
        .await;
    assert_eq!(chart["removed"], format!("run {} removed 1", held.id), "{chart}");
    assert_eq!(chart["build"], true, "{chart}");
    assert_eq!(chart["external"], 0, "{chart}");
    assert_eq!(
        chart["source"], "Source : RPPS (ANS), extrait du 25/11/2026",
        "the published generation's"
    );
    browser.click(&format!("#approve-{}", held.id)).await;
    // The first click shows who the run removes and changes, and asks for a confirmation
    // that names the counts: nothing is published yet.
    browser.find(&format!("#confirm-{}", held.id)).await;
    let review = browser
        .eval(&format!(
            "const r = (k) => [...document.querySelectorAll('#diff-' + k + '-{id} > ul > li')].map((li) => li.dataset.id);
             return {{ removed: r('removed'), changed: r('changed'),
                      fields: [...document.querySelectorAll('#diff-changed-{id} li.change')].map((li) => li.textContent),
                      confirm: document.getElementById('confirm-{id}').textContent }};",
            id = held.id
        ))
        .await;
    assert_eq!(review["removed"], serde_json::json!(["810013908172"]), "{review}");
    assert!(
        review["changed"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("810015620395")),
        "{review}"
    );
    assert!(
        review["fields"].as_array().unwrap().iter().any(|f| f
            .as_str()
            .unwrap()
            .starts_with("/SubjectRefPro/exercices/0/activities/0/telephone : ")
            && f.as_str().unwrap().ends_with("→ \"0148589999\"")),
        "{review}"
    );
    let confirm = review["confirm"].as_str().unwrap();
    let counts = format!(
        "{} radié(s), {} modifié(s), {} ajouté(s)",
        held.removed.unwrap(),
        held.changed.unwrap(),
        held.added.unwrap()
    );
    assert!(
        confirm.contains(&counts),
        "the confirmation names the counts: {confirm}"
    );
    browser
        .screenshot(&std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("admin-page-review.png"))
        .await;
    assert_ne!(
        annuaire::store::runs::current_generation(&pool).await.unwrap(),
        Some(held.id)
    );
    browser.click(&format!("#confirm-{}", held.id)).await;
    browser.wait_until("the approval", &format!("const row = document.querySelector('tr[data-run=\"{}\"]'); return row !== null && row.children[1].textContent === 'published'", held.id)).await;
    assert_eq!(
        annuaire::store::runs::current_generation(&pool).await.unwrap(),
        Some(held.id)
    );
    server.stop().await;
}

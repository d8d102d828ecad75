//! The IdP adapters at national scale (issue 12), each route's latency at a fixed 5,000
//! requests/s over 16 connections beside the plain claims route measured in the same run
//! (goal per route: p99 ≤ 1.2× `/v1/claims`'s):
//! - the Keycloak query form (`/v1/claims?username=psc-<id>` through a subject mapping,
//!   the key as `X-API-Key`);
//! - signed claims (`Accept: application/jwt`: one ES256 signature per request);
//! - Entra's custom claims provider (Microsoft's documented callout body; its RS256 token,
//!   checked against keys served by this process, the same for an hour as Entra's is, so
//!   remembered once validated; the claims reshaped for Entra);
//! - the Hydra and Okta hooks, for comparison.
//!
//! `cargo bench --bench adapters` (same variables as the import benchmark).

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::annuaire;
use common::published::Published;
use common::serving::{self, RATE, Server, free_port, open_loop_with, percentile};
use serde_json::{Value, json};

mod common;

const SECONDS: u64 = 5;
/// Slices of each route, each between two slices of the plain route.
const ROUNDS: usize = 5;
const CONNECTIONS: usize = 16;
const IDS: usize = 2_000;
const TENANT: &str = "aaaabbbb-0000-cccc-1111-dddd2222eeee";
const AUDIENCE: &str = "00001111-aaaa-2222-bbbb-3333cccc4444";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/entra/{name}", env!("CARGO_MANIFEST_DIR"))).expect("fixture")
}

/// Entra's keys, served by this process as Entra would.
async fn serve_entra_keys() -> String {
    let set: Value = json!({"keys": [serde_json::from_str::<Value>(&fixture("entra-test-a.jwk.json")).unwrap()]});
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/keys", listener.local_addr().unwrap());
    let app = axum::Router::new().route("/keys", axum::routing::get(move || async move { axum::Json(set) }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

fn entra_token() -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "aud": AUDIENCE, "iss": format!("https://login.microsoftonline.com/{TENANT}/v2.0"),
        "iat": now, "nbf": now, "exp": now + 3600, "azp": "99045fe1-7639-4a75-9d4a-577b6ca3810f",
    });
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("entra-test-a".to_owned());
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(fixture("entra-test-a.pem").as_bytes()).unwrap();
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

/// Microsoft's documented callout body, as the contract test sends it: the whole user
/// object and both service principals, which the route reads past.
fn callout(id: &str) -> Value {
    let mut body: Value = serde_json::from_str(&fixture("callout.json")).unwrap();
    body["data"]["authenticationContext"]["user"]["onPremisesSamAccountName"] = json!(id);
    body
}

fn line(label: &str, latencies: &[Duration], baseline: &[Duration]) -> String {
    let (p50, p99) = (percentile(latencies, 0.50), percentile(latencies, 0.99));
    format!(
        "{label:<44} p50 {p50:.3} ms  p99 {p99:.3} ms  p99 ÷ /v1/claims {:.2} (goal ≤ 1.2)",
        p99 / percentile(baseline, 0.99)
    )
}

fn main() {
    let published = Published::set_up("adapters");
    let runtime = &published.runtime;
    let ids = &published.ids[..IDS.min(published.ids.len())];
    let key = published.key("bench", "claims");
    let jwks_url = runtime.block_on(serve_entra_keys());

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    let _server = Server(
        annuaire()
            .env("DATABASE_URL", &published.url)
            .env("RUST_LOG", "warn")
            .env("ANNUAIRE_ISSUER", "https://annuaire.bench")
            .env("ANNUAIRE_SIGNING_KEY_UNENCRYPTED", "true")
            .env("ANNUAIRE_QUERY_SUBJECT_MAPPING", "pattern:^psc-(?P<id>\\d+)$")
            .env("ANNUAIRE_ENTRA_JWKS_URL", &jwks_url)
            .env(
                "ANNUAIRE_ENTRA_ISSUER",
                format!("https://login.microsoftonline.com/{TENANT}/v2.0"),
            )
            .env("ANNUAIRE_ENTRA_AUDIENCE", AUDIENCE)
            // As the replicas an IdP calls run: no search index built beside the measures.
            .args(["serve", "--routes", "claims", "--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("serve starts"),
    );
    let client = serving::client();
    runtime.block_on(serving::ready(&client, &base, started));
    let token = entra_token();
    // Every request's parts made before the measures (URLs parsed, header values checked,
    // bodies as shared bytes), so that the load generator, on the same two cores, spends
    // the same little on each route and the difference is the server's: building the
    // Entra request (a 1.3 KB body, a 0.9 KB token) per request cost the client more than
    // a plain GET's.
    let url = |path: String| reqwest::Url::parse(&format!("{base}{path}")).expect("url");
    let bearer = |secret: &str| {
        let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {secret}")).expect("header");
        value.set_sensitive(true);
        value
    };
    let (key_header, token_header) = (bearer(&key), bearer(&token));
    let key_value = reqwest::header::HeaderValue::from_str(&key).expect("header");
    let json_type = reqwest::header::HeaderValue::from_static("application/json");
    let jwt_type = reqwest::header::HeaderValue::from_static("application/jwt");
    let plain_urls: Vec<reqwest::Url> = ids.iter().map(|id| url(format!("/v1/claims/{id}"))).collect();
    let query_urls: Vec<reqwest::Url> = ids
        .iter()
        .map(|id| url(format!("/v1/claims?username=psc-{id}&client_id=account-console")))
        .collect();
    let (entra_url, hydra_url, okta_url) = (
        url("/v1/hooks/entra/token".to_owned()),
        url("/v1/hooks/hydra/token".to_owned()),
        url("/v1/hooks/okta/token".to_owned()),
    );
    let bytes = |value: &Value| bytes::Bytes::from(serde_json::to_vec(value).unwrap());
    let bodies: Vec<bytes::Bytes> = ids.iter().map(|id| bytes(&callout(id))).collect();
    let hydra: Vec<bytes::Bytes> = ids
        .iter()
        .map(|id| bytes(&json!({"session": {"id_token": {"subject": id}}})))
        .collect();
    let okta: Vec<bytes::Bytes> = ids
        .iter()
        .map(|id| bytes(&json!({"data": {"identity": {"claims": {"sub": id}}}})))
        .collect();
    let nth = |i: u64| i as usize % ids.len();
    let run = |make: &dyn Fn(u64) -> reqwest::RequestBuilder| {
        runtime.block_on(open_loop_with(SECONDS, Some(CONNECTIONS), make))
    };

    // One unmeasured pass of each: first-use costs (the JWKS fetch, connections) out.
    let warm = |make: &dyn Fn(u64) -> reqwest::RequestBuilder| {
        for i in 0..200 {
            runtime.block_on(make(i).send()).expect("warm-up request");
        }
    };
    use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
    let plain = |i: u64| {
        client
            .get(plain_urls[nth(i)].clone())
            .header(AUTHORIZATION, key_header.clone())
    };
    let query = |i: u64| {
        client
            .get(query_urls[nth(i)].clone())
            .header("x-api-key", key_value.clone())
    };
    let signed = |i: u64| plain(i).header(ACCEPT, jwt_type.clone());
    let post = |url: &reqwest::Url, authorization: &reqwest::header::HeaderValue, body: &bytes::Bytes| {
        client
            .post(url.clone())
            .header(AUTHORIZATION, authorization.clone())
            .header(CONTENT_TYPE, json_type.clone())
            .body(body.clone())
    };
    let entra = |i: u64| post(&entra_url, &token_header, &bodies[nth(i)]);
    let hydra_hook = |i: u64| post(&hydra_url, &key_header, &hydra[nth(i)]);
    let okta_hook = |i: u64| post(&okta_url, &key_header, &okta[nth(i)]);
    let routes: [(&str, &dyn Fn(u64) -> reqwest::RequestBuilder); 5] = [
        ("GET /v1/claims?username= (Keycloak)", &query),
        ("GET /v1/claims/{id} application/jwt (JWS)", &signed),
        ("POST /v1/hooks/entra/token (Entra)", &entra),
        ("POST /v1/hooks/hydra/token", &hydra_hook),
        ("POST /v1/hooks/okta/token", &okta_hook),
    ];
    warm(&plain);
    for (_, make) in &routes {
        warm(*make);
    }
    // The import's aftermath (checkpoint, page cache) out of the measures.
    common::psql(&published.cluster, &published.database, "CHECKPOINT")
        .status()
        .expect("checkpoint");
    std::thread::sleep(Duration::from_secs(10));
    // Each route in slices alternating with the plain route, so that both meet the same
    // moments of the machine; each is compared with the plain slices around it, pooled and
    // slice by slice (a slice's p99 ÷ the mean p99 of the plain slices before and after it):
    // on two shared cores one disturbed slice moves a pooled p99 by a third, so the median
    // of the slices' ratios is printed beside it.
    let mut measured = Vec::new();
    for (label, make) in &routes {
        let mut plains = vec![run(&plain)];
        let mut slices = Vec::new();
        for _ in 0..ROUNDS {
            slices.push(run(*make));
            plains.push(run(&plain));
        }
        let p99 = |slice: &[Duration]| percentile(slice, 0.99);
        let mut ratios: Vec<f64> = slices
            .iter()
            .enumerate()
            .map(|(i, slice)| p99(slice) / ((p99(&plains[i]) + p99(&plains[i + 1])) / 2.0))
            .collect();
        ratios.sort_by(f64::total_cmp);
        let mut route: Vec<Duration> = slices.concat();
        let mut beside: Vec<Duration> = plains.concat();
        route.sort();
        beside.sort();
        measured.push((*label, route, beside, ratios));
    }
    println!();
    println!(
        "IdP adapters, {} professionals, fixed {RATE} req/s, {CONNECTIONS} connections, {ROUNDS} slices of {SECONDS} s per route alternating with /v1/claims/{{id}}, {} ids (client side, loopback):",
        published.professionals,
        ids.len()
    );
    for (label, route, beside, ratios) in &measured {
        println!("{}", line(label, route, beside));
        let listed: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
        println!(
            "    slice by slice, p99 ÷ the plain slices around it: median {:.2} ({})",
            ratios[ratios.len() / 2],
            listed.join(", ")
        );
        println!("{}", line("    GET /v1/claims/{id} around it", beside, beside));
    }
}

//! The Entra ID custom claims provider against a real server and Postgres, with a local
//! JWKS server standing in for Entra's keys and tokens signed by the test: Microsoft's
//! documented callout body gets exactly Microsoft's documented response shape; only a
//! valid token of Entra's events service passes (expired, wrong audience, wrong issuer,
//! another caller, `alg: none`, HS256 and unknown keys are refused); an unknown `kid` fetches
//! the keys again (so rotated keys work), at most once a minute by default. Keys unreachable
//! at start-up come with the next fetch, not a minute later: while none is held, callouts
//! share one fetch in flight, and failed fetches back off.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use annuaire::http::entra::EntraSettings;
use annuaire::http::entra::token as entra_token;
use annuaire::http::{HookSettings, UnknownSubject};
use axum::extract::State;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use common::server::{TestServer, wait_for};
use common::{published_db, samples};

const TENANT: &str = "aaaabbbb-0000-cccc-1111-dddd2222eeee";
const AUDIENCE: &str = "00001111-aaaa-2222-bbbb-3333cccc4444";
const EVENTS_SERVICE: &str = "99045fe1-7639-4a75-9d4a-577b6ca3810f";

fn issuer() -> String {
    format!("https://login.microsoftonline.com/{TENANT}/v2.0")
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/entra/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn jwk(kid: &str) -> Value {
    serde_json::from_str(&fixture(&format!("{kid}.jwk.json"))).unwrap()
}

/// A local stand-in for Entra's key endpoint: serves the current key set, counts fetches,
/// and can be down (503) or slow.
struct Keys {
    set: Mutex<Value>,
    fetches: AtomicUsize,
    /// How many of the next fetches get a 503 (`usize::MAX`: down until told otherwise).
    failing: AtomicUsize,
    /// How long each answer takes.
    delay: Duration,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
    /// When each fetch arrived.
    arrivals: Mutex<Vec<Instant>>,
}

impl Keys {
    fn new(set: Value) -> Arc<Keys> {
        Keys::failing(set, 0, Duration::ZERO)
    }

    fn failing(set: Value, failing: usize, delay: Duration) -> Arc<Keys> {
        Arc::new(Keys {
            set: Mutex::new(set),
            fetches: AtomicUsize::new(0),
            failing: AtomicUsize::new(failing),
            delay,
            in_flight: AtomicUsize::new(0),
            most_in_flight: AtomicUsize::new(0),
            arrivals: Mutex::default(),
        })
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

async fn serve_keys(keys: Arc<Keys>) -> String {
    async fn handler(State(keys): State<Arc<Keys>>) -> axum::response::Response {
        use axum::response::IntoResponse;
        keys.arrivals.lock().unwrap().push(Instant::now());
        keys.fetches.fetch_add(1, Ordering::SeqCst);
        let in_flight = keys.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        keys.most_in_flight.fetch_max(in_flight, Ordering::SeqCst);
        tokio::time::sleep(keys.delay).await;
        keys.in_flight.fetch_sub(1, Ordering::SeqCst);
        let failing = keys.failing.load(Ordering::SeqCst);
        if failing > 0 {
            if failing != usize::MAX {
                keys.failing.fetch_sub(1, Ordering::SeqCst);
            }
            return axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        axum::Json(keys.set.lock().unwrap().clone()).into_response()
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/discovery/v2.0/keys", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/discovery/v2.0/keys", axum::routing::get(handler))
        .with_state(keys);
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The claims of a v2 token Entra's events service gets for our API.
fn entra_claims() -> Value {
    json!({
        "aud": AUDIENCE, "iss": issuer(), "iat": now() - 10, "nbf": now() - 10, "exp": now() + 3600,
        "azp": EVENTS_SERVICE, "azpacr": "2", "oid": "3e5d1c4b-0000-0000-0000-000000000000",
        "sub": "3e5d1c4b-0000-0000-0000-000000000000", "tid": TENANT, "ver": "2.0",
    })
}

fn sign(kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    let key = EncodingKey::from_rsa_pem(fixture(&format!("{kid}.pem")).as_bytes()).unwrap();
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

/// Microsoft's documented callout body (custom-extension-troubleshoot, "Call your REST API
/// directly"; `fixtures/entra/callout.json`), the user's `onPremisesSamAccountName` set to
/// a professional's id.
fn callout(sam_account_name: &str) -> Value {
    let mut body: Value = serde_json::from_str(&fixture("callout.json")).unwrap();
    body["data"]["authenticationContext"]["user"]["onPremisesSamAccountName"] = json!(sam_account_name);
    body
}

fn settings(jwks_url: &str, refetch_after: Duration, unknown: UnknownSubject) -> HookSettings {
    retrying(jwks_url, refetch_after, entra_token::FIRST_RETRY, unknown)
}

fn retrying(jwks_url: &str, refetch_after: Duration, first_retry: Duration, unknown: UnknownSubject) -> HookSettings {
    HookSettings {
        unknown,
        entra: Some(EntraSettings {
            jwks_url: EntraSettings::check_jwks_url(jwks_url).unwrap(),
            issuer: issuer(),
            audiences: vec![AUDIENCE.to_owned()],
            subject_attribute: "onPremisesSamAccountName".to_owned(),
            mapping: None,
            refetch_after,
            first_retry,
        }),
        ..HookSettings::default()
    }
}

async fn call(server: &TestServer, token: Option<&str>, body: &Value) -> reqwest::Response {
    let mut request = server.client.post(server.url("/v1/hooks/entra/token")).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

/// What Microsoft documents as the response, with the claims of `expected/<id>.json` as
/// Entra takes them: strings as they are, `SubjectRole` an array, the rest compact JSON.
fn documented_response(id: &str) -> Value {
    let document: Value =
        serde_json::from_str(&std::fs::read_to_string(samples().join(format!("expected/{id}.json"))).unwrap()).unwrap();
    let mut claims = serde_json::Map::new();
    for (key, value) in document.as_object().unwrap() {
        let value = match key.as_str() {
            "SubjectRefPro" | "otherIds" => Value::String(serde_json::to_string(value).unwrap()),
            _ => value.clone(),
        };
        claims.insert(key.clone(), value);
    }
    json!({"data": {
        "@odata.type": "microsoft.graph.onTokenIssuanceStartResponseData",
        "actions": [{"@odata.type": "microsoft.graph.tokenIssuanceStart.provideClaimsForToken", "claims": claims}]
    }})
}

/// `token` with its signature's first character changed (it holds six whole bits).
fn tampered(token: &str) -> String {
    let at = token.rfind('.').unwrap() + 1;
    let other = if &token[at..=at] == "A" { "B" } else { "A" };
    format!("{}{other}{}", &token[..at], &token[at + 1..])
}

/// The answer with its JSON-text claims read back: their key order is the document's, and
/// `documented_response` builds them from a parsed document.
fn readable(answer: &Value) -> Value {
    let mut answer = answer.clone();
    for claim in ["SubjectRefPro", "otherIds"] {
        let text = &mut answer["data"]["actions"][0]["claims"][claim];
        let parsed: Value = serde_json::from_str(text.as_str().expect("a JSON text")).unwrap();
        *text = parsed;
    }
    answer
}

#[tokio::test]
async fn entra_gets_its_documented_answer_and_only_its_own_tokens_pass() {
    let db = published_db("ps-libreacces").await;
    let keys = Keys::new(json!({"keys": [jwk("entra-test-a")]}));
    let jwks_url = serve_keys(Arc::clone(&keys)).await;
    // Keys fetched again on every unknown `kid`, to see rotation within the test.
    let server = TestServer::start(
        db.pool.clone(),
        settings(&jwks_url, Duration::ZERO, UnknownSubject::Deny),
    )
    .await;

    let valid = sign("entra-test-a", &entra_claims());
    let reply = call(&server, Some(&valid), &callout("810003456125")).await;
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.headers()["content-type"], "application/json");
    let body = reply.bytes().await.unwrap();
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(readable(&answer), readable(&documented_response("810003456125")));
    // The JSON-text claims are compact JSON, in the document's own order.
    let ref_pro = answer["data"]["actions"][0]["claims"]["SubjectRefPro"]
        .as_str()
        .unwrap();
    assert!(
        ref_pro.starts_with(r#"{"codeCivilite":"MME","exercices":[{"codeProfession":"10""#),
        "{ref_pro}"
    );
    let claims = serde_json::to_vec(&answer["data"]["actions"][0]["claims"]).unwrap();
    assert!(claims.len() <= 3 * 1024, "{} bytes of claims", claims.len());
    // A bare RPPS as the account name, and a v1 token (`appid`, no `azp`).
    let mut v1 = entra_claims();
    v1.as_object_mut().unwrap().remove("azp");
    v1["appid"] = json!(EVENTS_SERVICE);
    v1["ver"] = json!("1.0");
    let reply = call(&server, Some(&sign("entra-test-a", &v1)), &callout("10003456125")).await;
    assert_eq!(reply.status(), 200);
    assert_eq!(
        readable(&reply.json::<Value>().await.unwrap()),
        readable(&documented_response("810003456125"))
    );

    // Every other token is a 401 problem.
    let with = |change: &dyn Fn(&mut Value)| {
        let mut claims = entra_claims();
        change(&mut claims);
        sign("entra-test-a", &claims)
    };
    let none = {
        use base64::Engine;
        let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        format!(
            "{}.{}.",
            b64(&json!({"alg": "none", "kid": "entra-test-a", "typ": "JWT"})),
            b64(&entra_claims())
        )
    };
    let hs256 = {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("entra-test-a".to_owned());
        // The public key as an HMAC secret: the old algorithm confusion.
        jsonwebtoken::encode(
            &header,
            &entra_claims(),
            &EncodingKey::from_secret(jwk("entra-test-a")["n"].as_str().unwrap().as_bytes()),
        )
        .unwrap()
    };
    let refused: Vec<(&str, Option<String>)> = vec![
        ("no token", None),
        (
            "expired",
            Some(with(&|c| {
                c["exp"] = json!(now() - 600);
                c["iat"] = json!(now() - 4000);
                c["nbf"] = json!(now() - 4000);
            })),
        ),
        ("not yet valid", Some(with(&|c| c["nbf"] = json!(now() + 600)))),
        (
            "wrong audience",
            Some(with(&|c| c["aud"] = json!("api://someone-else"))),
        ),
        (
            "wrong issuer",
            Some(with(&|c| {
                c["iss"] = json!(format!("https://login.microsoftonline.com/{TENANT}/v2.0/"))
            })),
        ),
        (
            "another caller",
            Some(with(&|c| c["azp"] = json!("11111111-2222-3333-4444-555555555555"))),
        ),
        ("alg none", Some(none)),
        ("HS256", Some(hs256)),
        ("unknown key", Some(sign("entra-test-b", &entra_claims()))),
        ("tampered", Some(tampered(&valid))),
    ];
    for (case, token) in &refused {
        let reply = call(&server, token.as_deref(), &callout("810003456125")).await;
        assert_eq!(reply.status(), 401, "{case}");
        assert_eq!(reply.headers()["content-type"], "application/problem+json", "{case}");
    }

    // Rotation: Entra publishes key B beside A, then drops A. An unknown `kid` fetches again.
    let fetched = keys.fetches.load(Ordering::SeqCst);
    *keys.set.lock().unwrap() = json!({"keys": [jwk("entra-test-a"), jwk("entra-test-b")]});
    let rotated = sign("entra-test-b", &entra_claims());
    assert_eq!(
        call(&server, Some(&rotated), &callout("810003456125")).await.status(),
        200
    );
    assert!(
        keys.fetches.load(Ordering::SeqCst) > fetched,
        "an unknown kid fetched the keys again"
    );
    *keys.set.lock().unwrap() = json!({"keys": [jwk("entra-test-b")]});
    // A's key stays cached until a fetch is due; B keeps working.
    assert_eq!(
        call(&server, Some(&rotated), &callout("810003456125")).await.status(),
        200
    );

    // Unknown, removed or unmappable subjects: 403 under deny.
    for subject in ["810000000000", "Casey Jensen"] {
        let reply = call(&server, Some(&rotated), &callout(subject)).await;
        assert_eq!(reply.status(), 403, "{subject}");
    }
    // Not a callout: 400.
    let reply = call(
        &server,
        Some(&rotated),
        &json!({"data": {"@odata.type": "something.else"}}),
    )
    .await;
    assert_eq!(reply.status(), 400);
    server.stop().await;

    // Allow: an empty claims object, in the same shape; unknown kids fetch at most once a
    // minute.
    let server = TestServer::start(
        db.pool.clone(),
        settings(
            &jwks_url,
            annuaire::http::entra::token::REFETCH_AFTER,
            UnknownSubject::Allow,
        ),
    )
    .await;
    let reply = call(&server, Some(&rotated), &callout("810000000000")).await;
    assert_eq!(reply.status(), 200);
    assert_eq!(
        reply.json::<Value>().await.unwrap(),
        json!({"data": {
            "@odata.type": "microsoft.graph.onTokenIssuanceStartResponseData",
            "actions": [{"@odata.type": "microsoft.graph.tokenIssuanceStart.provideClaimsForToken", "claims": {}}]
        }})
    );
    let before = keys.fetches.load(Ordering::SeqCst);
    for _ in 0..5 {
        let forged = sign("entra-test-a", &entra_claims());
        assert_eq!(
            call(&server, Some(&forged), &callout("810003456125")).await.status(),
            401
        );
    }
    assert!(
        keys.fetches.load(Ordering::SeqCst) <= before + 1,
        "unknown kids fetch the keys at most once a minute"
    );
    server.stop().await;

    // Without its settings the route does not exist.
    let server = TestServer::start(db.pool.clone(), HookSettings::default()).await;
    let reply = call(&server, Some(&rotated), &callout("810003456125")).await;
    assert_eq!(reply.status(), 404);
    server.stop().await;
}

/// A callout with `token` for a known professional, until it passes or `deadline` ends.
async fn passes_within(server: &TestServer, token: &str, deadline: Duration) {
    let (client, url, token) = (
        server.client.clone(),
        server.url("/v1/hooks/entra/token"),
        token.to_owned(),
    );
    wait_for("a callout with a valid token to pass", deadline, || {
        let (client, url, token) = (client.clone(), url.clone(), token.clone());
        async move {
            let reply = client
                .post(url)
                .bearer_auth(token)
                .json(&callout("810003456125"))
                .send()
                .await;
            reply.is_ok_and(|r| r.status() == 200)
        }
    })
    .await;
}

#[tokio::test]
async fn keys_unreachable_at_start_up_come_with_the_next_fetch_not_a_minute_later() {
    let db = published_db("ps-libreacces").await;
    let keys = Keys::failing(json!({"keys": [jwk("entra-test-a")]}), usize::MAX, Duration::ZERO);
    let jwks_url = serve_keys(Arc::clone(&keys)).await;
    // The production timers: a minute between fetches once keys are held, a second's first
    // retry while none is.
    let server = TestServer::start(
        db.pool.clone(),
        settings(&jwks_url, entra_token::REFETCH_AFTER, UnknownSubject::Deny),
    )
    .await;
    let fetched = Arc::clone(&keys);
    wait_for("the start-up fetch to fail", Duration::from_secs(10), || {
        let fetched = Arc::clone(&fetched);
        async move { fetched.fetches() >= 1 }
    })
    .await;
    let valid = sign("entra-test-a", &entra_claims());
    assert_eq!(
        call(&server, Some(&valid), &callout("810003456125")).await.status(),
        401
    );

    // The network is back: the next fetch gets the keys, far sooner than the minute a fetch
    // for an unknown key waits once keys are held.
    keys.failing.store(0, Ordering::SeqCst);
    passes_within(&server, &valid, Duration::from_secs(10)).await;
    let reply = call(&server, Some(&valid), &callout("810003456125")).await;
    assert_eq!(reply.status(), 200);
    assert_eq!(
        readable(&reply.json::<Value>().await.unwrap()),
        readable(&documented_response("810003456125"))
    );
    // The start-up fetch is a supervised task, shown by /readyz.
    let ready: Value = server
        .client
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["tasks"]["entra-keys"]["up"], true, "{ready}");
    server.stop().await;
}

#[tokio::test]
async fn callouts_while_no_key_is_held_share_one_fetch() {
    let db = published_db("ps-libreacces").await;
    // The start-up fetch fails; the next answers, slowly: the callouts come while it runs.
    let keys = Keys::failing(json!({"keys": [jwk("entra-test-a")]}), 1, Duration::from_millis(800));
    let jwks_url = serve_keys(Arc::clone(&keys)).await;
    let server = TestServer::start(
        db.pool.clone(),
        retrying(
            &jwks_url,
            entra_token::REFETCH_AFTER,
            Duration::from_millis(200),
            UnknownSubject::Deny,
        ),
    )
    .await;
    let fetched = Arc::clone(&keys);
    wait_for("a second fetch after the failed one", Duration::from_secs(10), || {
        let fetched = Arc::clone(&fetched);
        async move { fetched.fetches() >= 2 }
    })
    .await;

    const CALLOUTS: usize = 16;
    let valid = sign("entra-test-a", &entra_claims());
    let server = Arc::new(server);
    let callouts: Vec<_> = (0..CALLOUTS)
        .map(|_| {
            let (server, valid) = (Arc::clone(&server), valid.clone());
            tokio::spawn(async move { call(&server, Some(&valid), &callout("810003456125")).await.status() })
        })
        .collect();
    for callout in callouts {
        assert_eq!(callout.await.unwrap(), 200);
    }
    assert_eq!(keys.fetches(), 2, "{CALLOUTS} callouts waited for the fetch in flight");
    assert_eq!(keys.most_in_flight.load(Ordering::SeqCst), 1, "one fetch at a time");
    Arc::into_inner(server).expect("no callout left").stop().await;
}

#[tokio::test]
async fn failed_fetches_back_off_while_callouts_keep_coming() {
    let db = published_db("ps-libreacces").await;
    let keys = Keys::failing(json!({"keys": [jwk("entra-test-a")]}), usize::MAX, Duration::ZERO);
    let jwks_url = serve_keys(Arc::clone(&keys)).await;
    let (first_retry, refetch_after) = (Duration::from_millis(50), Duration::from_millis(800));
    let server = TestServer::start(
        db.pool.clone(),
        retrying(&jwks_url, refetch_after, first_retry, UnknownSubject::Deny),
    )
    .await;
    // Callouts one after another while the key server stays down: each is refused at once,
    // and they fetch no more often than the back-off allows.
    let valid = sign("entra-test-a", &entra_claims());
    let (mut callouts, until) = (0, Instant::now() + Duration::from_secs(20));
    while keys.fetches() < 7 {
        assert!(
            Instant::now() < until,
            "timed out waiting for 7 fetches; {} so far",
            keys.fetches()
        );
        assert_eq!(
            call(&server, Some(&valid), &callout("810003456125")).await.status(),
            401
        );
        callouts += 1;
    }
    let arrivals = keys.arrivals.lock().unwrap().clone();
    assert!(
        callouts > 2 * arrivals.len(),
        "{callouts} callouts, {} fetches",
        arrivals.len()
    );
    let gaps: Vec<Duration> = arrivals.windows(2).map(|pair| pair[1] - pair[0]).collect();
    // The first retry comes after the back-off's first wait, not after `refetch_after`...
    assert!(
        gaps[0] < refetch_after / 2,
        "the first retry came {:?} after the start-up fetch",
        gaps[0]
    );
    // ...and the waits double up to `refetch_after`: 50 ms, 100, 200, 400, 800, 800.
    let waits = [50, 100, 200, 400, 800, 800].map(Duration::from_millis);
    for (i, (gap, wait)) in gaps.iter().zip(waits).enumerate() {
        assert!(
            *gap >= wait,
            "fetch {} came {gap:?} after the one before, not {wait:?}",
            i + 2
        );
    }
    server.stop().await;
}

//! The request log and request ids. Every routed request runs in a `request` span carrying
//! its id (the client's `X-Request-Id` when it is 1 to 128 characters of `[A-Za-z0-9._-]`,
//! else one made here), so every line logged while it is served carries the id too; the id
//! is returned in `X-Request-Id`. One line per request at its end: `info` for the admin,
//! search, feed and job routes, `debug` for the claims routes, the hooks and the probes,
//! whose volume is high. Headers are never logged: keys stay out of the log.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::{HeaderMap, HeaderName, HeaderValue};

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest request id taken from a client.
const MAX_ID_CHARS: usize = 128;

/// Ids made here: a random prefix per process and a counter, unique across replicas
/// without a system call per request.
static PREFIX: LazyLock<String> = LazyLock::new(|| {
    let mut bytes = [0u8; 6];
    let _ = getrandom::fill(&mut bytes);
    hex::encode(bytes)
});
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The request's id: the client's if acceptable, else a new one.
pub fn request_id(headers: &HeaderMap) -> HeaderValue {
    if let Some(given) = headers.get(&X_REQUEST_ID)
        && acceptable(given.as_bytes())
    {
        return given.clone();
    }
    let id = format!("{}-{:x}", *PREFIX, COUNTER.fetch_add(1, Ordering::Relaxed));
    HeaderValue::from_str(&id).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

fn acceptable(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_CHARS
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Routes whose requests are logged at `debug`: the IdP's and the probes'.
pub fn high_volume(route: &str) -> bool {
    route.starts_with("/v1/claims")
        || route.starts_with("/v1/hooks/")
        || matches!(route, "/healthz" | "/readyz" | "/metrics" | "/.well-known/jwks.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_id_is_kept_only_when_short_and_plain() {
        let mut headers = HeaderMap::new();
        headers.insert(&X_REQUEST_ID, HeaderValue::from_static("abc-123_x.y"));
        assert_eq!(request_id(&headers), "abc-123_x.y");
        for bad in ["a b", "a/b", "é", ""] {
            headers.insert(
                &X_REQUEST_ID,
                HeaderValue::from_str(bad).unwrap_or(HeaderValue::from_static("a b")),
            );
            assert_ne!(request_id(&headers).as_bytes(), bad.as_bytes(), "{bad:?}");
        }
        headers.insert(&X_REQUEST_ID, HeaderValue::from_str(&"a".repeat(129)).unwrap());
        let made = request_id(&headers);
        assert!(made.len() < 40 && made != "a".repeat(129).as_str());
        let (one, two) = (request_id(&HeaderMap::new()), request_id(&HeaderMap::new()));
        assert_ne!(one, two, "made ids differ");
        assert!(high_volume("/v1/claims/{id}") && high_volume("/v1/hooks/entra/token"));
        assert!(!high_volume("/v1/imports") && !high_volume("/v1/jobs/{name}/run"));
    }
}

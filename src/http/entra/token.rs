//! Entra ID authenticates its callout with its own bearer token, not our key: RS256, signed
//! by a key of the configured JWKS (fetched and cached; fetched again on an unknown `kid`,
//! at most once a minute and within 2 s, keeping the cached keys), `iss` exactly as
//! configured, `aud` one of the configured audiences, `exp` and `nbf` with a minute of
//! leeway, and `azp` (v2 tokens) or `appid` (v1) naming Entra's authentication events
//! service. Anything else is refused.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use crate::http::SubjectMapping;

/// The application id of Entra's authentication events service, the caller of every
/// custom claims provider.
pub const EVENTS_SERVICE_APP_ID: &str = "99045fe1-7639-4a75-9d4a-577b6ca3810f";
const LEEWAY_SECONDS: u64 = 60;
const FETCH_TIMEOUT: Duration = Duration::from_secs(2);
/// Entra's key sets are a few kilobytes.
const MAX_JWKS_BYTES: usize = 256 * 1024;

/// The Entra route's settings; the route is off without them.
#[derive(Debug, Clone)]
pub struct EntraSettings {
    pub jwks_url: reqwest::Url,
    pub issuer: String,
    pub audiences: Vec<String>,
    /// The attribute of `authenticationContext.user` that carries the subject.
    pub subject_attribute: String,
    /// The route's own subject mapping, else the global one.
    pub mapping: Option<SubjectMapping>,
    /// How soon an unknown `kid` may fetch the keys again (a minute; tests shorten it).
    pub refetch_after: Duration,
}

/// A minute between fetches of Entra's keys for an unknown `kid`: a flood of forged tokens
/// costs Entra's key server one request a minute.
pub const REFETCH_AFTER: Duration = Duration::from_secs(60);

impl EntraSettings {
    /// Checks the key set's URL: https, or http to a loopback address (tests).
    pub fn check_jwks_url(url: &str) -> Result<reqwest::Url, String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url:?}: {e}"))?;
        let loopback = match parsed.host_str() {
            Some("localhost") => true,
            Some(host) => host
                .trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback()),
            None => false,
        };
        match parsed.scheme() {
            "https" => Ok(parsed),
            "http" if loopback => Ok(parsed),
            _ => Err(format!("{url:?}: the key set must be fetched over https")),
        }
    }
}

/// The claims of Entra's token that are checked beyond the standard ones.
#[derive(Debug, serde::Deserialize)]
struct CallerClaims {
    azp: Option<String>,
    appid: Option<String>,
    exp: i64,
}

type Keys = HashMap<String, Arc<DecodingKey>>;

/// Validates Entra's tokens against its published keys.
pub struct EntraAuth {
    pub settings: EntraSettings,
    client: reqwest::Client,
    keys: ArcSwap<Keys>,
    /// When the keys were last fetched: an unknown `kid` refetches at most once a minute.
    fetched: tokio::sync::Mutex<Option<Instant>>,
    validation: Validation,
    /// Tokens already validated, with their `exp`: Entra sends the same client-credentials
    /// token for an hour, and an RS256 check on every callout is most of this route's
    /// cost. Keyed by the whole token (never a hash of it), at most `VALIDATED_TOKENS`.
    validated: std::sync::Mutex<HashMap<String, i64>>,
}

/// Entra holds one token per tenant at a time; a few tenants or a rotation fit.
const VALIDATED_TOKENS: usize = 16;

impl EntraAuth {
    pub fn new(settings: EntraSettings, client: reqwest::Client) -> EntraAuth {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&settings.audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        EntraAuth {
            settings,
            client,
            keys: ArcSwap::default(),
            fetched: tokio::sync::Mutex::new(None),
            validation,
            validated: std::sync::Mutex::default(),
        }
    }

    /// Accepts the request's `Authorization` header, or says why not (for the log only:
    /// the caller answers a bare 401).
    pub async fn validate(&self, authorization: Option<&str>) -> Result<(), String> {
        let token = authorization
            .and_then(crate::http::auth::bearer_token)
            .ok_or("no bearer token")?;
        let now = chrono::Utc::now().timestamp();
        let leeway = LEEWAY_SECONDS as i64;
        let known = self.validated.lock().ok().and_then(|known| known.get(token).copied());
        if known.is_some_and(|exp| now <= exp + leeway) {
            return Ok(());
        }
        // `alg: none` and every algorithm but RS256 fail here or just below.
        let header = jsonwebtoken::decode_header(token).map_err(|e| format!("token header: {e}"))?;
        if header.alg != Algorithm::RS256 {
            return Err(format!("algorithm {:?}, not RS256", header.alg));
        }
        let kid = header.kid.ok_or("the token names no key (kid)")?;
        let key = match self.key(&kid) {
            Some(key) => key,
            None => {
                self.refresh().await;
                self.key(&kid).ok_or_else(|| format!("unknown key {kid:?}"))?
            }
        };
        let decoded = jsonwebtoken::decode::<CallerClaims>(token, &key, &self.validation)
            .map_err(|e| format!("token refused: {e}"))?;
        let caller = decoded.claims.azp.or(decoded.claims.appid);
        if caller.as_deref() != Some(EVENTS_SERVICE_APP_ID) {
            return Err(format!(
                "caller {caller:?} is not Entra's authentication events service"
            ));
        }
        if let Ok(mut known) = self.validated.lock() {
            if known.len() >= VALIDATED_TOKENS {
                known.retain(|_, exp| now <= *exp + leeway);
                if known.len() >= VALIDATED_TOKENS {
                    known.clear();
                }
            }
            // `exp` is required by the validation: it is there.
            known.insert(token.to_owned(), decoded.claims.exp);
        }
        Ok(())
    }

    fn key(&self, kid: &str) -> Option<Arc<DecodingKey>> {
        self.keys.load().get(kid).cloned()
    }

    /// Fetches the keys again unless that was done less than a minute ago; on failure the
    /// cached keys stay.
    pub async fn refresh(&self) {
        let mut fetched = self.fetched.lock().await;
        if fetched.is_some_and(|at| at.elapsed() < self.settings.refetch_after) {
            return;
        }
        *fetched = Some(Instant::now());
        match self.fetch().await {
            Ok(keys) => {
                tracing::info!(keys = keys.len(), url = %self.settings.jwks_url, "Entra signing keys fetched");
                self.keys.store(Arc::new(keys));
            }
            Err(error) => {
                tracing::warn!(%error, url = %self.settings.jwks_url, "Entra signing keys unavailable; the cached ones stay")
            }
        }
    }

    async fn fetch(&self) -> Result<Keys, String> {
        let response = self
            .client
            .get(self.settings.jwks_url.clone())
            .timeout(FETCH_TIMEOUT)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .error_for_status()
            .map_err(|e| e.to_string())?;
        if response.content_length().is_some_and(|n| n > MAX_JWKS_BYTES as u64) {
            return Err("the key set is too large".to_owned());
        }
        let body = response.bytes().await.map_err(|e| e.to_string())?;
        if body.len() > MAX_JWKS_BYTES {
            return Err("the key set is too large".to_owned());
        }
        let set: serde_json::Value = serde_json::from_slice(&body).map_err(|e| format!("not JSON: {e}"))?;
        let mut keys = Keys::new();
        // Key by key: one of a kind this program does not read leaves the others usable.
        for key in set["keys"].as_array().ok_or("no `keys` array")? {
            let Ok(jwk) = serde_json::from_value::<Jwk>(key.clone()) else {
                continue;
            };
            if let (Some(kid), Ok(decoding)) = (jwk.common.key_id.clone(), DecodingKey::from_jwk(&jwk)) {
                keys.insert(kid, Arc::new(decoding));
            }
        }
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::EntraSettings;

    #[test]
    fn the_key_set_comes_over_https_or_from_loopback() {
        assert!(EntraSettings::check_jwks_url("https://login.microsoftonline.com/t/discovery/v2.0/keys").is_ok());
        assert!(EntraSettings::check_jwks_url("http://127.0.0.1:8080/keys").is_ok());
        assert!(EntraSettings::check_jwks_url("http://localhost:8080/keys").is_ok());
        assert!(EntraSettings::check_jwks_url("http://login.example/keys").is_err());
        assert!(EntraSettings::check_jwks_url("ftp://127.0.0.1/keys").is_err());
    }
}

//! Entra ID authenticates its callout with its own bearer token, not our key: RS256, signed
//! by a key of the configured JWKS (fetched and cached by `keys`), `iss` exactly as
//! configured, `aud` one of the configured audiences, `exp` and `nbf` with a minute of
//! leeway, and `azp` (v2 tokens) or `appid` (v1) naming Entra's authentication events
//! service. Anything else is refused.

use std::collections::HashMap;
use std::time::Duration;

use jsonwebtoken::{Algorithm, Validation};
use tokio_util::sync::CancellationToken;

use super::keys::EntraKeys;
use crate::http::SubjectMapping;

/// The application id of Entra's authentication events service, the caller of every
/// custom claims provider.
pub const EVENTS_SERVICE_APP_ID: &str = "99045fe1-7639-4a75-9d4a-577b6ca3810f";
const LEEWAY_SECONDS: u64 = 60;

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
    /// With no key held, the wait after a failed fetch: doubled on each failure in a row,
    /// up to `refetch_after` (a second; tests shorten it).
    pub first_retry: Duration,
}

/// A minute between fetches of Entra's keys for an unknown `kid`: a flood of forged tokens
/// costs Entra's key server one request a minute.
pub const REFETCH_AFTER: Duration = Duration::from_secs(60);

/// A second after a failed fetch while no key is held: a restart during a network blip
/// refuses Entra's callouts for about as long as the blip, not a minute more.
pub const FIRST_RETRY: Duration = Duration::from_secs(1);

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

/// Validates Entra's tokens against its published keys.
pub struct EntraAuth {
    pub settings: EntraSettings,
    keys: EntraKeys,
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
            keys: EntraKeys::new(&settings, client),
            settings,
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
        let key = match self.keys.get(&kid) {
            Some(key) => key,
            None => {
                self.keys.refresh_for(&kid).await;
                self.keys.get(&kid).ok_or_else(|| format!("unknown key {kid:?}"))?
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

    /// Fetches Entra's keys until some are held, then waits for `stop`: the server's
    /// supervised start-up task.
    pub async fn keep_keys(&self, stop: CancellationToken) {
        self.keys.keep(stop).await;
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

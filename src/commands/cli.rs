//! The command line's grammar (clap): the commands, their arguments, help texts and
//! environment variables, and how each set of arguments becomes the library's options
//! (`From` conversions). `main.rs` parses it and hands each command to `commands::*`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::http::HookSettings;
use crate::import::{GateThresholds, ImportOptions};
use crate::search::SearchRequest;
use crate::store::DatabaseSettings;

/// Keeps a Postgres copy of the French health directory (Annuaire Santé) from its public
/// extracts, one checked generation at a time, and serves the sectoral claims of each
/// professional.
#[derive(Parser)]
#[command(version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// A TOML file of settings, keyed by long flag name (`listen = "0.0.0.0:8080"`): beneath
    /// the environment and the flags, above the defaults.
    #[arg(long, env = "ANNUAIRE_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Log lines on stderr: `text` (colours only on a terminal without NO_COLOR) or `json`
    /// (one object per line, for journald, Loki or ELK).
    #[arg(long, env = "ANNUAIRE_LOG_FORMAT", global = true, value_enum, default_value = "text")]
    pub log_format: crate::logging::LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args)]
pub struct DatabaseArgs {
    /// PostgreSQL server to use. Unset: run a private cluster under ANNUAIRE_HOME from the
    /// machine's PostgreSQL binaries (created on first use).
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,
    /// Whether, without DATABASE_URL, a private cluster may run under ANNUAIRE_HOME; `off`
    /// (containers) makes a missing DATABASE_URL an error.
    #[arg(long, env = "ANNUAIRE_EMBEDDED", global = true, value_parser = ["on", "off"], default_value = "on")]
    pub embedded: String,
    /// Home of the embedded cluster and of downloads.
    #[arg(long, env = "ANNUAIRE_HOME", global = true, default_value = ".annuaire")]
    pub home: PathBuf,
    /// Folder of the scheduled job definitions (one TOML file per job).
    #[arg(long, env = "ANNUAIRE_JOBS_DIR", global = true, default_value = "jobs")]
    pub jobs_dir: PathBuf,
    /// Extra CA bundle (PEM) for downloads: the publisher's IGC-Santé chain.
    #[arg(long, env = "ANNUAIRE_CA_BUNDLE", global = true)]
    pub ca_bundle: Option<PathBuf>,
    /// CPU niceness of imports (0 to 19), from the command line or the scheduler, and of
    /// their Postgres backends when the server is local (reached by its Unix socket): batch
    /// work yields to servers answering IdPs on the same machine.
    #[arg(long, env = "ANNUAIRE_IMPORT_NICE", global = true, default_value_t = 10,
          value_parser = crate::settings::NICE.parser())]
    pub nice: i32,
}

// Parsed once per process: the size of its largest variant costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
pub enum Command {
    #[command(flatten)]
    Store(StoreCommand),
    /// Write a deterministic, realistic PS_LibreAcces zip (national scale: 1700000).
    #[cfg(feature = "gen")]
    GenSample(GenSampleArgs),
    /// Manage the embedded PostgreSQL cluster.
    #[command(subcommand)]
    Db(DbCommand),
    /// The configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Check this set-up and say what to do: the database (reachable, version, migrations),
    /// the embedded cluster, the jobs and their last runs, the CA bundle, the search index,
    /// the disk, the published generation's age, the signing keys (each must open under
    /// ANNUAIRE_SIGNING_KEY_SECRET, as on the servers). Migrates and starts nothing. Exit 0 when
    /// nothing is an error, 1 otherwise.
    Doctor {
        #[arg(long)]
        json: bool,
    },
}

/// Commands that work on the database.
#[derive(Subcommand)]
pub enum StoreCommand {
    /// Apply the database migrations (every command that needs them does it too).
    Migrate,
    /// Import an extract: a PS_LibreAcces zip, a directory of .txt files, one .txt file, or
    /// an http(s) URL of one of those. Exit 0 published or skipped, 3 held, 1 failed.
    Import(ImportArgs),
    /// Inspect and approve import runs.
    #[command(subcommand)]
    Imports(ImportsCommand),
    /// Serve the claims API (and the IdP hooks) from an in-memory snapshot of the published
    /// generation, following new generations as they are published.
    Serve(ServeArgs),
    /// Manage the API keys of the clients.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The keys that sign claims for relying parties (`Accept: application/jwt`).
    #[command(subcommand)]
    SigningKeys(SigningKeysCommand),
    /// The scheduled jobs of the jobs folder.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Search professionals (names forgiving accents and typos, identifiers, places, codes).
    Search(SearchArgs),
    /// Print the claims document of a professional as JSON (national id, bare RPPS or bare
    /// ADELI). Exit 0 found, 4 never seen, 5 removed (date on stderr), 6 malformed id.
    Claims {
        /// e.g. 810001234565, 10001234565 (RPPS) or 012600631 (ADELI)
        id: String,
        /// The document as it was served at this instant, byte for byte (for audits): an
        /// RFC 3339 instant (2026-11-21T10:00:00Z) or a date (2026-11-21: the end of that
        /// day, Paris time). Exit 4 if not published then, 5 if removed by then.
        #[arg(long, value_parser = crate::commands::history::parse_instant)]
        at: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// The change feed: the changes of every published generation after a cursor, oldest
    /// first (added, changed, removed; whether the claims changed). The cursor to ask with
    /// next time is printed last (`next: ...`), or in the JSON's `next`.
    Changes {
        /// The `next` of a previous call; empty: from the first generation.
        #[arg(long, default_value = "")]
        since: String,
        /// At most this many changes (1 to 10000).
        #[arg(long, default_value_t = crate::store::feed::DEFAULT_LIMIT)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// Export the published generation as NDJSON, one professional a line
    /// ({national_id, removed_at, claims}), removed ones with their last claims. The
    /// generation, source and the change feed's cursor after it are printed on stderr.
    Export {
        /// The file to write (replaced once complete).
        #[arg(long)]
        out: std::path::PathBuf,
        /// gzip-compress it.
        #[arg(long)]
        gzip: bool,
    },
    /// Purge the professionals removed longer ago than the retention period, with their
    /// whole history (present professionals keep every version). Recorded in `purge_run`;
    /// servers reload their snapshot, and a purged professional answers 404. Run it daily
    /// (cron, or a systemd timer).
    Purge {
        /// Days a removal is kept after its publication (1 to 36500).
        #[arg(long, env = "ANNUAIRE_RETENTION_DAYS", default_value_t = crate::store::retention::DEFAULT_RETENTION_DAYS,
              value_parser = crate::settings::RETENTION_DAYS.parser())]
        retention_days: i32,
        #[arg(long)]
        json: bool,
    },
    /// Every published version of a professional, oldest first: the run, the extract and
    /// publication dates, added / changed / removed, and the claim fields that changed.
    /// Exit 4 if never published, 6 if the id is malformed.
    History {
        /// National id, bare RPPS or bare ADELI.
        id: String,
        /// One JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
pub struct ImportArgs {
    /// Path or URL of the extract.
    pub source: String,
    /// Publish even if the safety gate would hold the run.
    #[arg(long)]
    pub force: bool,
    /// Hold the run when more than this percent (0 to 100) of the published professionals
    /// of one identifier type would be removed.
    #[arg(long, env = "ANNUAIRE_MAX_REMOVED_PCT", default_value_t = 1.0,
          value_parser = crate::settings::PERCENT.parser())]
    pub max_removed_pct: f64,
    /// Hold the run when more than this percent (0 to 100) of one identifier type would
    /// change.
    #[arg(long, env = "ANNUAIRE_MAX_CHANGED_PCT", default_value_t = 5.0,
          value_parser = crate::settings::PERCENT.parser())]
    pub max_changed_pct: f64,
    /// Fail the run when more than this percent (0 to 100) of the lines are rejected.
    #[arg(long, env = "ANNUAIRE_MAX_REJECT_PCT", default_value_t = 0.1,
          value_parser = crate::settings::PERCENT.parser())]
    pub max_reject_pct: f64,
    /// Reject lines longer than this many bytes (4 KiB to 64 MiB; real lines are about 400
    /// bytes); memory holds at most one such line whatever the file.
    #[arg(long, env = "ANNUAIRE_MAX_LINE_BYTES", default_value_t = crate::extract::DEFAULT_MAX_LINE_BYTES,
          value_parser = crate::settings::LINE_BYTES.parser())]
    pub max_line_bytes: usize,
    /// Print the run record as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "ANNUAIRE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// How a token subject maps to a national id in the IdP hooks: `national-id` (a national
    /// id, bare RPPS or bare ADELI), `federated` (`f:<uuid>:<id>`), or `pattern:<regex>`
    /// (the group `id`, or the first group).
    #[arg(long, env = "ANNUAIRE_SUBJECT_MAPPING", default_value = "national-id")]
    pub subject_mapping: crate::http::SubjectMapping,
    /// What the hooks answer for an unknown or removed professional: refuse the token, or
    /// issue it without sectoral claims.
    #[arg(long, env = "ANNUAIRE_UNKNOWN_SUBJECT", value_enum, default_value = "deny")]
    pub unknown_subject: crate::http::UnknownSubject,
    /// What the plain claims routes (`/v1/claims/{id}` and `/v1/claims?username=`) answer
    /// for an unknown or removed professional: the problem (404, 410), or `200 {}` for the
    /// Keycloak claim mappers that mint no token at all on any other status. Malformed
    /// requests (400) and no data yet (503) stay problems.
    #[arg(long, env = "ANNUAIRE_UNKNOWN_PLAIN", value_enum, default_value = "problem")]
    pub unknown_plain: crate::http::UnknownPlain,
    /// The subject mapping of the query form `/v1/claims?username=` (Keycloak claim
    /// mappers send the Keycloak username, such as `psc-810001234565`: use
    /// `pattern:^psc-(?P<id>\d+)$`). Default: --subject-mapping.
    #[arg(long, env = "ANNUAIRE_QUERY_SUBJECT_MAPPING")]
    pub query_subject_mapping: Option<crate::http::SubjectMapping>,
    /// The subject mapping of the Hydra token hook. Default: --subject-mapping.
    #[arg(long, env = "ANNUAIRE_HYDRA_SUBJECT_MAPPING")]
    pub hydra_subject_mapping: Option<crate::http::SubjectMapping>,
    /// The subject mapping of the Okta token hook. Default: --subject-mapping.
    #[arg(long, env = "ANNUAIRE_OKTA_SUBJECT_MAPPING")]
    pub okta_subject_mapping: Option<crate::http::SubjectMapping>,
    /// Entra ID custom claims provider (`POST /v1/hooks/entra/token`): the URL of Entra's
    /// signing keys (https; `https://login.microsoftonline.com/<tenant>/discovery/v2.0/keys`).
    /// The route is off unless this, --entra-issuer and --entra-audience are all given.
    #[arg(long, env = "ANNUAIRE_ENTRA_JWKS_URL")]
    pub entra_jwks_url: Option<String>,
    /// The `iss` Entra's tokens must carry, exactly (`https://login.microsoftonline.com/<tenant>/v2.0`,
    /// or `https://sts.windows.net/<tenant>/` for v1 tokens).
    #[arg(long, env = "ANNUAIRE_ENTRA_ISSUER")]
    pub entra_issuer: Option<String>,
    /// The `aud` Entra's tokens must carry: the client id of the API's app registration
    /// (v1 tokens may carry its application id URI: give both, comma-separated).
    #[arg(long, env = "ANNUAIRE_ENTRA_AUDIENCE", value_delimiter = ',')]
    pub entra_audience: Vec<String>,
    /// The attribute of Entra's `authenticationContext.user` that carries the subject.
    #[arg(
        long,
        env = "ANNUAIRE_ENTRA_SUBJECT_ATTRIBUTE",
        default_value = "onPremisesSamAccountName"
    )]
    pub entra_subject_attribute: String,
    /// The subject mapping of the Entra route. Default: --subject-mapping.
    #[arg(long, env = "ANNUAIRE_ENTRA_SUBJECT_MAPPING")]
    pub entra_subject_mapping: Option<crate::http::SubjectMapping>,
    /// The `iss` of signed claims: with it, `Accept: application/jwt` on the claims routes
    /// answers a compact JWS (ES256) and `/.well-known/jwks.json` publishes the keys; without
    /// it, application/jwt is a 406.
    #[arg(long, env = "ANNUAIRE_ISSUER")]
    pub issuer: Option<String>,
    /// Lifetime of a signed document (`exp - iat`), in seconds (30 to 86400).
    #[arg(long, env = "ANNUAIRE_JWT_TTL_SECONDS", default_value_t = 300,
          value_parser = crate::settings::JWT_TTL_SECONDS.parser())]
    pub jwt_ttl_seconds: u64,
    #[command(flatten)]
    pub sealing: SealingArgs,
    /// Run the job scheduler in this process (with several on, the job locks still allow
    /// one run per job). Default: on, except on `--routes claims` replicas.
    #[arg(long, env = "ANNUAIRE_SCHEDULER", value_parser = ["on", "off"])]
    pub scheduler: Option<String>,
    /// Which routes this replica serves: `all`; `claims` (claims, IdP hooks, health,
    /// metrics: the replicas the IdP calls; never opens the search index); `admin` (search,
    /// records, imports, jobs, the admin page).
    #[arg(long, env = "ANNUAIRE_ROUTES", value_enum, default_value = "all")]
    pub routes: crate::http::Routes,
    /// URL told of each published generation (repeat, or comma-separate in the variable):
    /// a JSON POST of {run_id, extract_ts, published_at, added, changed, removed,
    /// removed_ids, changes_cursor}, signed with HMAC-SHA256 under ANNUAIRE_WEBHOOK_SECRET
    /// (required with it; from the environment only) in `X-Annuaire-Signature: sha256=<hex>`.
    /// Delivered at least once by one replica, retried for about a day and a half.
    #[arg(long = "publish-webhook", env = "ANNUAIRE_PUBLISH_WEBHOOKS", value_delimiter = ',')]
    pub publish_webhooks: Vec<String>,
    /// An export (`GET /v1/export`) whose client takes nothing for this many seconds ends,
    /// with its transaction, and frees the export slot.
    #[arg(long, env = "ANNUAIRE_EXPORT_STALL_SECONDS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub export_stall_seconds: u64,
    /// Connections one client address (an IPv6 /64) may hold open at once, of the 4,096
    /// the server accepts; one more is closed at once. 0: no limit. Behind a reverse proxy
    /// or a NAT, all clients share one address: raise it or set 0 there.
    #[arg(long, env = "ANNUAIRE_MAX_CONNECTIONS_PER_CLIENT",
          default_value_t = (crate::http::listener::DEFAULT_MAX_CONNECTIONS / 4) as u64,
          value_parser = clap::value_parser!(u64).range(0..=crate::http::listener::DEFAULT_MAX_CONNECTIONS as u64))]
    pub max_connections_per_client: u64,
}

impl ServeArgs {
    /// The hooks' settings; the Entra route needs its three settings or none of them.
    pub fn hooks(&self) -> anyhow::Result<HookSettings> {
        let mut hooks = HookSettings {
            mapping: self.subject_mapping.clone(),
            unknown: self.unknown_subject,
            unknown_plain: self.unknown_plain,
            hydra_mapping: self.hydra_subject_mapping.clone(),
            okta_mapping: self.okta_subject_mapping.clone(),
            query_mapping: self.query_subject_mapping.clone(),
            entra: None,
        };
        let audiences: Vec<String> = self
            .entra_audience
            .iter()
            .map(|a| a.trim().to_owned())
            .filter(|a| !a.is_empty())
            .collect();
        match (&self.entra_jwks_url, &self.entra_issuer, audiences.is_empty()) {
            (None, None, true) => {}
            (Some(url), Some(issuer), false) => {
                let jwks_url = crate::http::entra::EntraSettings::check_jwks_url(url)
                    .map_err(|e| anyhow::anyhow!("--entra-jwks-url {e}"))?;
                hooks.entra = Some(crate::http::entra::EntraSettings {
                    jwks_url,
                    issuer: issuer.clone(),
                    audiences,
                    subject_attribute: self.entra_subject_attribute.clone(),
                    mapping: self.entra_subject_mapping.clone(),
                    refetch_after: crate::http::entra::token::REFETCH_AFTER,
                    first_retry: crate::http::entra::token::FIRST_RETRY,
                });
            }
            _ => anyhow::bail!(
                "the Entra route needs --entra-jwks-url, --entra-issuer and --entra-audience together (ANNUAIRE_ENTRA_JWKS_URL, ANNUAIRE_ENTRA_ISSUER, ANNUAIRE_ENTRA_AUDIENCE)"
            ),
        }
        Ok(hooks)
    }

    /// Signed claims' settings: none without an issuer; with one, a way to keep the keys.
    pub fn signing(&self) -> anyhow::Result<Option<crate::signing::SigningSettings>> {
        let Some(issuer) = self.issuer.as_deref().map(str::trim).filter(|i| !i.is_empty()) else {
            return Ok(None);
        };
        if !(30..=86_400).contains(&self.jwt_ttl_seconds) {
            anyhow::bail!("--jwt-ttl-seconds {}: from 30 to 86400", self.jwt_ttl_seconds);
        }
        Ok(Some(crate::signing::SigningSettings {
            issuer: issuer.to_owned(),
            ttl: std::time::Duration::from_secs(self.jwt_ttl_seconds),
            sealing: self.sealing.sealing()?,
        }))
    }

    /// The webhooks' settings: none without URLs; with URLs, the secret must be set.
    pub fn webhooks(&self) -> anyhow::Result<Option<crate::server::webhooks::WebhookSettings>> {
        let urls: Vec<String> = self
            .publish_webhooks
            .iter()
            .map(|u| u.trim().to_owned())
            .filter(|u| !u.is_empty())
            .collect();
        if urls.is_empty() {
            return Ok(None);
        }
        // A URL may carry credentials: errors name it by its place or show it masked.
        for (n, url) in urls.iter().enumerate() {
            let parsed = reqwest::Url::parse(url)
                .map_err(|e| anyhow::anyhow!("--publish-webhook (URL {} of {}): {e}", n + 1, urls.len()))?;
            anyhow::ensure!(
                matches!(parsed.scheme(), "http" | "https"),
                "--publish-webhook {:?}: only http and https URLs are called",
                crate::config::mask_url(url).unwrap_or_default()
            );
        }
        let secret = std::env::var("ANNUAIRE_WEBHOOK_SECRET").unwrap_or_default();
        anyhow::ensure!(
            secret.len() >= 16,
            "--publish-webhook needs ANNUAIRE_WEBHOOK_SECRET in the environment (16 characters at least): the receivers check each call's signature with it"
        );
        Ok(Some(crate::server::webhooks::WebhookSettings::new(urls, secret)))
    }
}

#[derive(Args)]
pub struct SearchArgs {
    /// Words, a name, an identifier (RPPS, ADELI, SIRET, FINESS, MSSanté address).
    pub query: Option<String>,
    /// Profession code (10 médecin, 60 infirmier...).
    #[arg(long)]
    pub profession: Option<String>,
    #[arg(long)]
    pub categorie: Option<String>,
    #[arg(long)]
    pub savoir_faire: Option<String>,
    /// Département (69, 2A, 974).
    #[arg(long)]
    pub departement: Option<String>,
    #[arg(long)]
    pub commune: Option<String>,
    #[arg(long)]
    pub code_postal: Option<String>,
    #[arg(long)]
    pub mode: Option<String>,
    #[arg(long)]
    pub secteur: Option<String>,
    /// true: only removed professionals; false: only present ones.
    #[arg(long)]
    pub removed: Option<bool>,
    #[arg(long, default_value_t = 1)]
    pub page: usize,
    #[arg(long, default_value_t = 20)]
    pub per_page: usize,
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand)]
pub enum JobsCommand {
    /// The jobs with their schedule, next fire time and last run.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Run a job now (exit 0 published or skipped, 3 held, 1 failed).
    Run {
        name: String,
        /// Fetch from this URL instead of the job's sources, for this run only.
        #[arg(long)]
        source: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Create a key; it is printed once on stdout.
    Create {
        /// The client's name (one active key per name).
        #[arg(long)]
        name: String,
        /// Comma-separated scopes: claims, search, admin, feed.
        #[arg(long)]
        scope: String,
    },
    /// All keys, active and revoked (never the secrets).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke the active key with this name or id; running servers drop it within seconds.
    Revoke { key: String },
}

/// Settings read from the environment only, never from a flag: secrets (a flag would show
/// in the process list), and what the logging reads before anything is parsed.
pub const ENVIRONMENT_ONLY: [&str; 4] = [
    "ANNUAIRE_WEBHOOK_SECRET",
    "ANNUAIRE_SIGNING_KEY_SECRET",
    "RUST_LOG",
    "NO_COLOR",
];

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// The effective settings and where each comes from (flag, environment, file,
    /// default), secrets masked.
    Show {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum SigningKeysCommand {
    /// Every key: its kid, when it was created, when it signs from, and whether it is
    /// sealed (never the private key).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Add a new key. It is published in the JWKS at once and signs after the delay, so that
    /// relying parties' cached JWKS know it first; the previous key stays published until
    /// the tokens it signed have expired. Refused, storing nothing, unless
    /// ANNUAIRE_SIGNING_KEY_SECRET opens every stored key: a mistyped secret would make a
    /// signing key that no server can open.
    Rotate {
        /// Seconds before the new key signs (default: an hour).
        #[arg(long, default_value_t = 3600)]
        activate_after: u64,
        #[command(flatten)]
        sealing: SealingArgs,
    },
    /// Remove a key that is pending (it has signed nothing yet), or one that
    /// ANNUAIRE_SIGNING_KEY_SECRET cannot open (sealed under another secret: it never signs
    /// and blocks rotations; `/readyz` says `signing: unusable (<kid>: ...)`). Any other key
    /// is refused: the tokens it signed must stay verifiable. The secret must open another
    /// stored key, which shows it is the servers' one.
    #[command(
        after_help = "ANNUAIRE_SIGNING_KEY_SECRET is read from the environment only: give it the servers' value. The kids and their states: annuaire signing-keys list"
    )]
    Retire {
        /// The key's kid, as `annuaire signing-keys list` shows it (one in 64 starts with
        /// `-`: taken as the kid, not as an option).
        #[arg(allow_hyphen_values = true)]
        kid: String,
        /// Retire even though the secret opens no stored key (every key sealed under a lost
        /// secret): nothing then shows that this secret is not itself mistyped.
        #[arg(long)]
        unproven_secret: bool,
        #[command(flatten)]
        sealing: SealingArgs,
    },
}

/// How private signing keys are kept: sealed under ANNUAIRE_SIGNING_KEY_SECRET (from the
/// environment only), or plainly with the explicit development flag.
#[derive(Args, Clone, Debug)]
pub struct SealingArgs {
    /// Store signing keys unencrypted (development only); otherwise
    /// ANNUAIRE_SIGNING_KEY_SECRET (32 characters at least) must be set.
    #[arg(long, env = "ANNUAIRE_SIGNING_KEY_UNENCRYPTED")]
    pub signing_key_unencrypted: bool,
}

impl SealingArgs {
    pub fn sealing(&self) -> anyhow::Result<crate::signing::Sealing> {
        match std::env::var("ANNUAIRE_SIGNING_KEY_SECRET") {
            Ok(secret) if !secret.is_empty() => {
                crate::signing::Sealing::from_secret(&secret).map_err(|e| anyhow::anyhow!(e))
            }
            _ if self.signing_key_unencrypted => Ok(crate::signing::Sealing::Unsealed),
            _ => anyhow::bail!(
                "signing keys are sealed under ANNUAIRE_SIGNING_KEY_SECRET (32 random characters at least, from the environment); for development only, --signing-key-unencrypted stores them plainly"
            ),
        }
    }
}

#[derive(Subcommand)]
pub enum ImportsCommand {
    /// The latest runs, newest first.
    List {
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// One run with its timings, files and rejected lines.
    Show {
        run: i64,
        #[arg(long)]
        json: bool,
    },
    /// Who a run (held or published) removes, changes and adds, with the claim fields that
    /// change (old -> new): read it before approving a held run.
    Diff {
        run: i64,
        /// removed, changed or added; all three when not given.
        #[arg(long, value_parser = ["removed", "changed", "added"])]
        kind: Option<String>,
        /// Page of each kind, from 1.
        #[arg(long, default_value_t = 1)]
        page: i64,
        /// Professionals per page and kind (1 to 500).
        #[arg(long, default_value_t = crate::import::review::DEFAULT_PER_PAGE)]
        per_page: i64,
        #[arg(long)]
        json: bool,
    },
    /// Publish a run held by the safety gate.
    Approve {
        run: i64,
        #[arg(long)]
        json: bool,
    },
}

#[cfg(feature = "gen")]
#[derive(Args)]
pub struct GenSampleArgs {
    #[arg(long, default_value_t = 1000)]
    pub professionals: u64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Days after the base population: some gone, some new, some changed.
    #[arg(long, default_value_t = 0)]
    pub day: u32,
    /// Directory to write the zip into.
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
    /// Order of the lines in each file (the same lines either way).
    #[arg(long, value_enum, default_value_t = GenOrder::Grouped)]
    pub order: GenOrder,
}

/// `gen-sample --order`: the real files' order is unknown, so both are generated.
#[cfg(feature = "gen")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum GenOrder {
    /// A professional's lines are consecutive, professionals in the same order in every file.
    Grouped,
    /// Each file's lines interleaved in a deterministic pseudo-random order, so no file is
    /// grouped by professional; a professional's own lines keep their relative order (written
    /// through a temporary file beside the zip).
    Shuffled,
}

#[derive(Subcommand)]
pub enum DbCommand {
    /// Stop the embedded cluster.
    Stop,
    /// Print the URL of the embedded database (for psql or DATABASE_URL), starting it if
    /// needed.
    Url,
}

impl From<&DatabaseArgs> for DatabaseSettings {
    fn from(args: &DatabaseArgs) -> Self {
        DatabaseSettings {
            url: args.database_url.clone(),
            home: args.home.clone(),
            embedded: args.embedded == "on",
        }
    }
}

/// The thresholds and bounds of the command line; where downloads go and with which
/// client depend on the process, and are the caller's to set.
impl From<&ImportArgs> for ImportOptions {
    fn from(args: &ImportArgs) -> Self {
        ImportOptions {
            force: args.force,
            gate: GateThresholds {
                max_removed_pct: args.max_removed_pct,
                max_changed_pct: args.max_changed_pct,
            },
            max_reject_pct: args.max_reject_pct,
            max_line_bytes: args.max_line_bytes,
            ..ImportOptions::default()
        }
    }
}

impl ServeArgs {
    /// Whether this replica runs the scheduler: as asked, else on except on claims replicas.
    pub fn runs_scheduler(&self) -> bool {
        match self.scheduler.as_deref() {
            Some(choice) => choice == "on",
            None => self.routes != crate::http::Routes::Claims,
        }
    }
}

impl From<SearchArgs> for SearchRequest {
    fn from(args: SearchArgs) -> Self {
        let removed = args.removed.map(|r| r.to_string());
        let filters = [
            ("profession", args.profession),
            ("categorie", args.categorie),
            ("savoir_faire", args.savoir_faire),
            ("departement", args.departement),
            ("commune", args.commune),
            ("code_postal", args.code_postal),
            ("mode", args.mode),
            ("secteur", args.secteur),
            ("removed", removed),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.map(|v| (name.to_owned(), v)))
        .collect();
        SearchRequest {
            q: args.query.unwrap_or_default(),
            filters,
            // Checked, not clamped, as the API does: out of range is an error.
            page: args.page,
            per_page: args.per_page,
            facets: true,
        }
    }
}

#[cfg(feature = "gen")]
impl From<GenSampleArgs> for crate::samplegen::GenOptions {
    fn from(args: GenSampleArgs) -> Self {
        crate::samplegen::GenOptions {
            professionals: args.professionals,
            seed: args.seed,
            day: args.day,
            out_dir: args.out,
            order: match args.order {
                GenOrder::Grouped => crate::samplegen::Order::Grouped,
                GenOrder::Shuffled => crate::samplegen::Order::Shuffled,
            },
        }
    }
}

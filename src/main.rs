//! The `annuaire` command line: parses arguments and calls the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use annuaire::commands::{self, Outcome};
use annuaire::embedded_pg::EmbeddedCluster;
use annuaire::import::{GateThresholds, ImportOptions};
use annuaire::store::{DatabaseSettings, Store};

/// Keeps a Postgres copy of the French health directory (Annuaire Santé) from its public
/// extracts, one checked generation at a time, and serves the sectoral claims of each
/// professional.
#[derive(Parser)]
#[command(version, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    database: DatabaseArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct DatabaseArgs {
    /// PostgreSQL server to use. Unset: run a private cluster under ANNUAIRE_HOME from the
    /// machine's PostgreSQL binaries (created on first use).
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    database_url: Option<String>,
    /// Home of the embedded cluster and of downloads.
    #[arg(long, env = "ANNUAIRE_HOME", global = true, default_value = ".annuaire")]
    home: PathBuf,
    /// Folder of the scheduled job definitions (one TOML file per job).
    #[arg(long, env = "ANNUAIRE_JOBS_DIR", global = true, default_value = "jobs")]
    jobs_dir: PathBuf,
    /// Extra CA bundle (PEM) for downloads: the publisher's IGC-Santé chain.
    #[arg(long, env = "ANNUAIRE_CA_BUNDLE", global = true)]
    ca_bundle: Option<PathBuf>,
    /// CPU niceness of imports (0 to 19), from the command line or the scheduler: batch
    /// work yields to servers answering IdPs on the same machine.
    #[arg(long, env = "ANNUAIRE_IMPORT_NICE", global = true, default_value_t = 10)]
    nice: i32,
}

#[derive(Subcommand)]
enum Command {
    #[command(flatten)]
    Store(StoreCommand),
    /// Write a deterministic, realistic PS_LibreAcces zip (national scale: 1700000).
    GenSample(GenSampleArgs),
    /// Manage the embedded PostgreSQL cluster.
    #[command(subcommand)]
    Db(DbCommand),
}

/// Commands that work on the database.
#[derive(Subcommand)]
enum StoreCommand {
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
    },
}

#[derive(Args)]
struct ImportArgs {
    /// Path or URL of the extract.
    source: String,
    /// Publish even if the safety gate would hold the run.
    #[arg(long)]
    force: bool,
    /// Hold the run when more than this percent of the published professionals of one
    /// identifier type would be removed.
    #[arg(long, env = "ANNUAIRE_MAX_REMOVED_PCT", default_value_t = 1.0)]
    max_removed_pct: f64,
    /// Hold the run when more than this percent of one identifier type would change.
    #[arg(long, env = "ANNUAIRE_MAX_CHANGED_PCT", default_value_t = 5.0)]
    max_changed_pct: f64,
    /// Fail the run when more than this percent of the lines are rejected.
    #[arg(long, env = "ANNUAIRE_MAX_REJECT_PCT", default_value_t = 0.1)]
    max_reject_pct: f64,
    /// Reject lines longer than this many bytes (real lines are about 400 bytes); memory
    /// holds at most one such line whatever the file.
    #[arg(long, env = "ANNUAIRE_MAX_LINE_BYTES", default_value_t = annuaire::extract::DEFAULT_MAX_LINE_BYTES)]
    max_line_bytes: usize,
    /// Print the run record as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "ANNUAIRE_LISTEN", default_value = "127.0.0.1:8080")]
    listen: std::net::SocketAddr,
    /// How a token subject maps to a national id in the IdP hooks: `national-id` (a national
    /// id, bare RPPS or bare ADELI), `federated` (`f:<uuid>:<id>`), or `pattern:<regex>`
    /// (the group `id`, or the first group).
    #[arg(long, env = "ANNUAIRE_SUBJECT_MAPPING", default_value = "national-id")]
    subject_mapping: annuaire::http::SubjectMapping,
    /// What the hooks answer for an unknown or removed professional: refuse the token, or
    /// issue it without sectoral claims.
    #[arg(long, env = "ANNUAIRE_UNKNOWN_SUBJECT", value_enum, default_value = "deny")]
    unknown_subject: annuaire::http::UnknownSubject,
    /// Run the job scheduler in this process (with several on, the job locks still allow
    /// one run per job). Default: on, except on `--routes claims` replicas.
    #[arg(long, env = "ANNUAIRE_SCHEDULER", value_parser = ["on", "off"])]
    scheduler: Option<String>,
    /// Which routes this replica serves: `all`; `claims` (claims, IdP hooks, health,
    /// metrics: the replicas the IdP calls; never opens the search index); `admin` (search,
    /// records, imports, jobs, the admin page).
    #[arg(long, env = "ANNUAIRE_ROUTES", value_enum, default_value = "all")]
    routes: annuaire::http::Routes,
}

#[derive(Args)]
struct SearchArgs {
    /// Words, a name, an identifier (RPPS, ADELI, SIRET, FINESS, MSSanté address).
    query: Option<String>,
    /// Profession code (10 médecin, 60 infirmier...).
    #[arg(long)]
    profession: Option<String>,
    #[arg(long)]
    categorie: Option<String>,
    #[arg(long)]
    savoir_faire: Option<String>,
    /// Département (69, 2A, 974).
    #[arg(long)]
    departement: Option<String>,
    #[arg(long)]
    commune: Option<String>,
    #[arg(long)]
    code_postal: Option<String>,
    #[arg(long)]
    mode: Option<String>,
    #[arg(long)]
    secteur: Option<String>,
    /// true: only removed professionals; false: only present ones.
    #[arg(long)]
    removed: Option<bool>,
    #[arg(long, default_value_t = 1)]
    page: usize,
    #[arg(long, default_value_t = 20)]
    per_page: usize,
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum JobsCommand {
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
enum KeysCommand {
    /// Create a key; it is printed once on stdout.
    Create {
        /// The client's name (one active key per name).
        #[arg(long)]
        name: String,
        /// Comma-separated scopes: claims, search, admin.
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

#[derive(Subcommand)]
enum ImportsCommand {
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
    /// Publish a run held by the safety gate.
    Approve {
        run: i64,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
struct GenSampleArgs {
    #[arg(long, default_value_t = 1000)]
    professionals: u64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Days after the base population: some gone, some new, some changed.
    #[arg(long, default_value_t = 0)]
    day: u32,
    /// Directory to write the zip into.
    #[arg(long, default_value = ".")]
    out: PathBuf,
}

#[derive(Subcommand)]
enum DbCommand {
    /// Stop the embedded cluster.
    Stop,
    /// Print the URL of the embedded database (for psql or DATABASE_URL), starting it if
    /// needed.
    Url,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=error")),
        )
        .with_writer(std::io::stderr)
        .init();
    // Before the runtime starts its threads, which inherit it.
    if let Command::Store(StoreCommand::Import(_)) = &cli.command {
        annuaire::priority::lower(cli.database.nice);
    }
    annuaire::install_crypto_provider();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(outcome) => outcome.into(),
        Err(error) => {
            eprintln!("error: {error:#}");
            Outcome::Failure.into()
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<Outcome> {
    let settings = DatabaseSettings {
        url: cli.database.database_url.clone(),
        home: cli.database.home.clone(),
    };
    match cli.command {
        Command::GenSample(args) => {
            let options = annuaire::samplegen::GenOptions {
                professionals: args.professionals,
                seed: args.seed,
                day: args.day,
                out_dir: args.out,
            };
            tokio::task::spawn_blocking(move || commands::gen_sample::run(&options)).await?
        }
        Command::Db(command) => db(command, &settings).await,
        Command::Store(command) => {
            let store = Store::open(&settings).await?;
            let pool = &store.pool;
            match command {
                StoreCommand::Migrate => {
                    println!("database schema is up to date");
                    Ok(Outcome::Success)
                }
                StoreCommand::Import(args) => {
                    let options = ImportOptions {
                        force: args.force,
                        gate: GateThresholds {
                            max_removed_pct: args.max_removed_pct,
                            max_changed_pct: args.max_changed_pct,
                        },
                        max_reject_pct: args.max_reject_pct,
                        max_line_bytes: args.max_line_bytes,
                        download_dir: settings.home.join("downloads"),
                        // Built for URL sources only: a local import needs no CA bundle.
                        downloader: if annuaire::download::is_remote(&args.source) {
                            Some(downloader(cli.database.ca_bundle.clone())?)
                        } else {
                            None
                        },
                        ..ImportOptions::default()
                    };
                    commands::imports::import(pool, &args.source, &options, args.json).await
                }
                StoreCommand::Imports(ImportsCommand::List { json, limit }) => {
                    commands::imports::list(pool, limit, json).await
                }
                StoreCommand::Imports(ImportsCommand::Show { run, json }) => {
                    commands::imports::show(pool, run, json).await
                }
                StoreCommand::Imports(ImportsCommand::Approve { run, json }) => {
                    commands::imports::approve(pool, run, json).await
                }
                StoreCommand::Claims { id } => commands::claims::show(pool, &id).await,
                StoreCommand::Serve(args) => {
                    let hooks = annuaire::http::HookSettings {
                        mapping: args.subject_mapping,
                        unknown: args.unknown_subject,
                    };
                    let scheduler = match args.scheduler.as_deref() {
                        Some(choice) => choice == "on",
                        None => args.routes != annuaire::http::Routes::Claims,
                    };
                    let config = annuaire::server::ServerConfig {
                        routes: args.routes,
                        hooks,
                        jobs: commands::serve::jobs_of(&cli.database.jobs_dir)?,
                        scheduler,
                        runner: runner_settings(&settings, &cli.database)?,
                        search_dir: Some(settings.home.join("search")),
                        connections: annuaire::http::ConnectionLimits::default(),
                    };
                    commands::serve::run(store.pool.clone(), args.listen, config).await
                }
                StoreCommand::Search(args) => {
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
                    let request = annuaire::search::SearchRequest {
                        q: args.query.unwrap_or_default(),
                        filters,
                        // Checked, not clamped, as the API does: out of range is an error.
                        page: args.page,
                        per_page: args.per_page,
                    };
                    commands::search::run(pool, &settings.home.join("search"), request, args.json).await
                }
                StoreCommand::Jobs(JobsCommand::List { json }) => {
                    let jobs = annuaire::jobs::load_dir(&cli.database.jobs_dir)?;
                    commands::jobs::list(pool, &jobs, json).await
                }
                StoreCommand::Jobs(JobsCommand::Run { name, source, json }) => {
                    let jobs = annuaire::jobs::load_dir(&cli.database.jobs_dir)?;
                    let runner = runner_settings(&settings, &cli.database)?;
                    commands::jobs::run(pool, &jobs, &name, source.as_deref(), &runner, json).await
                }
                StoreCommand::Keys(KeysCommand::Create { name, scope }) => {
                    commands::keys::create(pool, &name, &scope).await
                }
                StoreCommand::Keys(KeysCommand::List { json }) => commands::keys::list(pool, json).await,
                StoreCommand::Keys(KeysCommand::Revoke { key }) => commands::keys::revoke(pool, &key).await,
            }
        }
    }
}

/// The process's one HTTP client, for downloads and webhooks.
fn downloader(ca_bundle: Option<PathBuf>) -> anyhow::Result<annuaire::download::Downloader> {
    let settings = annuaire::download::DownloadSettings {
        extra_ca_bundle: ca_bundle,
        ..Default::default()
    };
    Ok(annuaire::download::Downloader::new(settings)?)
}

fn runner_settings(settings: &DatabaseSettings, args: &DatabaseArgs) -> anyhow::Result<annuaire::jobs::RunnerSettings> {
    Ok(annuaire::jobs::RunnerSettings {
        download_dir: settings.home.join("downloads"),
        downloader: downloader(args.ca_bundle.clone())?,
        nice: args.nice,
    })
}

async fn db(command: DbCommand, settings: &DatabaseSettings) -> anyhow::Result<Outcome> {
    let home = settings.home.clone();
    match command {
        DbCommand::Stop => {
            let was_running = tokio::task::spawn_blocking(move || EmbeddedCluster::stop(&home)).await??;
            println!("{}", if was_running { "stopped" } else { "not running" });
        }
        DbCommand::Url if settings.url.is_some() => {
            println!("DATABASE_URL is set: annuaire uses that server, not an embedded one");
        }
        DbCommand::Url => {
            let cluster = tokio::task::spawn_blocking(move || EmbeddedCluster::ensure_running(&home)).await??;
            cluster
                .create_database_if_missing(annuaire::store::EMBEDDED_DATABASE)
                .await?;
            println!("{}", cluster.url(annuaire::store::EMBEDDED_DATABASE));
        }
    }
    Ok(Outcome::Success)
}

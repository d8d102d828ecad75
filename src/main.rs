//! The `annuaire` command line: parses arguments (`commands::cli`) and calls the library.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};
use sqlx::PgPool;

use annuaire::commands::cli::{
    Cli, Command, ConfigCommand, DatabaseArgs, DbCommand, ImportArgs, ImportsCommand, JobsCommand, KeysCommand,
    ServeArgs, SigningKeysCommand, StoreCommand,
};
use annuaire::commands::{self, Outcome};
use annuaire::download::{DownloadSettings, Downloader};
use annuaire::import::ImportOptions;
use annuaire::store::embedded::EmbeddedCluster;
use annuaire::store::{DatabaseSettings, EMBEDDED_DATABASE, Store};

/// The allocator (`annuaire::allocator` says why and how it is set).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    annuaire::allocator::release_freed_memory_at_once();
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // The config file's settings become environment variables the environment does not
    // already set, before the parse: clap then layers flag > environment > file > default.
    let from_file = match annuaire::config::file_of(&args) {
        None => Vec::new(),
        Some(file) => match annuaire::config::read(&file) {
            // SAFETY: no other thread exists yet (the runtime starts below).
            #[allow(unsafe_code)]
            Ok(values) => unsafe { annuaire::config::apply(&values) },
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::FAILURE;
            }
        },
    };
    let matches = Cli::command().get_matches_from(&args);
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    annuaire::logging::init(cli.log_format);
    if let Command::Config(ConfigCommand::Show { json }) = &cli.command {
        return match commands::config::show(&matches, &from_file, *json) {
            Ok(outcome) => outcome.into(),
            Err(error) => {
                eprintln!("error: {error:#}");
                ExitCode::FAILURE
            }
        };
    }
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
    match cli.command {
        #[cfg(feature = "gen")]
        Command::GenSample(args) => {
            let options = annuaire::samplegen::GenOptions::from(args);
            tokio::task::spawn_blocking(move || commands::gen_sample::run(&options)).await?
        }
        Command::Db(command) => db(command, &DatabaseSettings::from(&cli.database)).await,
        Command::Doctor { json } => commands::doctor::run(&cli.database, json).await,
        // Answered before the runtime starts (it needs the parsed matches).
        Command::Config(_) => Ok(Outcome::Success),
        Command::Store(command) => {
            let store = Store::open(&DatabaseSettings::from(&cli.database)).await?;
            store_command(command, &store, &cli.database).await
        }
    }
}

/// The commands that work on the database, once it is open and migrated.
async fn store_command(command: StoreCommand, store: &Store, database: &DatabaseArgs) -> anyhow::Result<Outcome> {
    let pool = &store.pool;
    match command {
        StoreCommand::Migrate => {
            annuaire::out!("database schema is up to date")?;
            Ok(Outcome::Success)
        }
        StoreCommand::Import(args) => import(pool, &args, database).await,
        StoreCommand::Imports(command) => imports(pool, command).await,
        StoreCommand::Claims { id, at: None } => commands::claims::show(pool, &id).await,
        StoreCommand::Claims { id, at: Some(at) } => commands::history::claims_at(pool, &id, at).await,
        StoreCommand::History { id, json } => commands::history::show(pool, &id, json).await,
        StoreCommand::Purge { retention_days, json } => commands::history::purge(pool, retention_days, json).await,
        StoreCommand::Export { out, gzip } => commands::export::run(pool, &out, gzip).await,
        StoreCommand::Changes { since, limit, json } => commands::history::changes(pool, &since, limit, json).await,
        StoreCommand::Serve(args) => serve(store, &args, database).await,
        StoreCommand::Search(args) => {
            let json = args.json;
            let index_dir = database.home.join("search");
            commands::search::run(pool, &index_dir, args.into(), json).await
        }
        StoreCommand::Jobs(command) => jobs(pool, command, database).await,
        StoreCommand::Keys(command) => keys(pool, command).await,
        StoreCommand::SigningKeys(command) => match command {
            SigningKeysCommand::List { json } => commands::signing_keys::list(pool, json).await,
            SigningKeysCommand::Rotate {
                activate_after,
                sealing,
            } => commands::signing_keys::rotate(pool, activate_after, &sealing.sealing()?).await,
            SigningKeysCommand::Retire {
                kid,
                unproven_secret,
                sealing,
            } => commands::signing_keys::retire(pool, &kid, &sealing.sealing()?, unproven_secret).await,
        },
    }
}

async fn import(pool: &PgPool, args: &ImportArgs, database: &DatabaseArgs) -> anyhow::Result<Outcome> {
    let options = ImportOptions {
        work_dir: database.home.join("work"),
        // Built for URL sources only: a local import needs no CA bundle.
        downloader: if annuaire::download::is_remote(&args.source) {
            Some(downloader(database)?)
        } else {
            None
        },
        ..ImportOptions::from(args)
    };
    // Its own pool of niced backends (the process itself was niced before its runtime
    // started): on a machine that also serves claims, the import's Postgres work is the
    // competitor.
    let batch = annuaire::store::batch::pool(&pool.connect_options(), database.nice);
    let outcome = commands::imports::import(&batch, &args.source, &options, args.json).await;
    batch.close().await;
    outcome
}

async fn imports(pool: &PgPool, command: ImportsCommand) -> anyhow::Result<Outcome> {
    match command {
        ImportsCommand::List { json, limit } => commands::imports::list(pool, limit, json).await,
        ImportsCommand::Show { run, json } => commands::imports::show(pool, run, json).await,
        ImportsCommand::Approve { run, json } => commands::imports::approve(pool, run, json).await,
        ImportsCommand::Diff {
            run,
            kind,
            page,
            per_page,
            json,
        } => commands::imports::diff(pool, run, kind.as_deref(), page, per_page, json).await,
    }
}

async fn serve(store: &Store, args: &ServeArgs, database: &DatabaseArgs) -> anyhow::Result<Outcome> {
    let config = annuaire::server::ServerConfig {
        routes: args.routes,
        hooks: args.hooks()?,
        jobs: commands::serve::jobs_of(&database.jobs_dir)?,
        scheduler: args.runs_scheduler(),
        runner: runner_settings(database)?,
        search_dir: Some(database.home.join("search")),
        search_storage: Default::default(),
        connections: annuaire::http::ConnectionLimits {
            max_per_client: usize::try_from(args.max_connections_per_client)?,
            ..Default::default()
        },
        webhooks: args.webhooks()?,
        signing: args.signing()?,
        past: annuaire::http::PastLimits::default(),
        export_stall: std::time::Duration::from_secs(args.export_stall_seconds),
    };
    commands::serve::run(store.pool.clone(), args.listen, config).await
}

async fn jobs(pool: &PgPool, command: JobsCommand, database: &DatabaseArgs) -> anyhow::Result<Outcome> {
    let jobs = annuaire::jobs::load_dir(&database.jobs_dir)?;
    match command {
        JobsCommand::List { json } => commands::jobs::list(pool, &jobs, json).await,
        JobsCommand::Run { name, source, json } => {
            let runner = runner_settings(database)?;
            commands::jobs::run(pool, &jobs, &name, source.as_deref(), &runner, json).await
        }
    }
}

async fn keys(pool: &PgPool, command: KeysCommand) -> anyhow::Result<Outcome> {
    match command {
        KeysCommand::Create { name, scope } => commands::keys::create(pool, &name, &scope).await,
        KeysCommand::List { json } => commands::keys::list(pool, json).await,
        KeysCommand::Revoke { key } => commands::keys::revoke(pool, &key).await,
    }
}

/// The process's HTTP clients (downloads with the CA bundle; Entra and webhooks on the
/// system roots), built once per command that calls out: one that cannot be built stops
/// the command here, with why.
fn downloader(database: &DatabaseArgs) -> anyhow::Result<Downloader> {
    use anyhow::Context;
    let settings = DownloadSettings {
        extra_ca_bundle: database.ca_bundle.clone(),
        ..Default::default()
    };
    Downloader::new(settings).context("cannot build the HTTP clients (ANNUAIRE_CA_BUNDLE, TLS set-up)")
}

fn runner_settings(database: &DatabaseArgs) -> anyhow::Result<annuaire::jobs::RunnerSettings> {
    Ok(annuaire::jobs::RunnerSettings {
        work_dir: database.home.join("work"),
        downloader: downloader(database)?,
        nice: database.nice,
    })
}

async fn db(command: DbCommand, settings: &DatabaseSettings) -> anyhow::Result<Outcome> {
    let home = settings.home.clone();
    match command {
        DbCommand::Stop => {
            let was_running = tokio::task::spawn_blocking(move || EmbeddedCluster::stop(&home)).await??;
            annuaire::out!("{}", if was_running { "stopped" } else { "not running" })?;
        }
        DbCommand::Url if settings.url.is_some() => {
            annuaire::out!("DATABASE_URL is set: annuaire uses that server, not an embedded one")?;
        }
        DbCommand::Url => {
            let cluster = tokio::task::spawn_blocking(move || EmbeddedCluster::ensure_running(&home)).await??;
            cluster.create_database_if_missing(EMBEDDED_DATABASE).await?;
            annuaire::out!("{}", cluster.url(EMBEDDED_DATABASE))?;
        }
    }
    Ok(Outcome::Success)
}

//! Postgres, the single source of truth, and the only module that speaks SQL: connecting
//! (to `DATABASE_URL` or to the embedded default cluster), migrations, and the statements
//! of each aggregate (runs, job runs, staging, records, the publication and its readers,
//! mailboxes, keys). Queries are runtime-checked; each is exercised by the integration tests.

pub mod batch;
pub mod channels;
pub mod codec;
pub mod copy;
pub mod embedded;
pub mod feed;
pub mod history;
pub mod job_runs;
pub mod keys;
pub mod lock;
pub mod mailboxes;
pub mod professionals;
pub mod publication;
pub mod published;
pub mod records;
pub mod retention;
pub mod runs;
pub mod signing_keys;
pub mod staging;
pub mod status;
pub mod webhooks;

pub use status::{Change, JobRunStatus, RunId, RunStatus};

use std::path::PathBuf;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use embedded::EmbeddedCluster;

/// Where the database is.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// An explicit server; `None` runs the embedded cluster under `home`.
    pub url: Option<String>,
    pub home: PathBuf,
    /// Whether the embedded cluster may stand in for a missing `url` (`ANNUAIRE_EMBEDDED`).
    pub embedded: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("embedded PostgreSQL: {0}")]
    Embedded(#[from] embedded::EmbeddedPgError),
    #[error("cannot connect to the database: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
    #[error("DATABASE_URL is required: the embedded cluster is off (ANNUAIRE_EMBEDDED=off)")]
    NoDatabase,
}

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The database annuaire uses inside its embedded cluster.
pub const EMBEDDED_DATABASE: &str = "annuaire";

#[derive(Clone)]
pub struct Store {
    pub pool: PgPool,
}

impl Store {
    /// Connects and brings the schema up to date.
    pub async fn open(settings: &DatabaseSettings) -> Result<Store, StoreError> {
        let url = match &settings.url {
            Some(url) => url.clone(),
            None if !settings.embedded => return Err(StoreError::NoDatabase),
            None => {
                let home = settings.home.clone();
                let cluster = tokio::task::spawn_blocking(move || EmbeddedCluster::ensure_running(&home))
                    .await
                    .map_err(|e| StoreError::Connect(sqlx::Error::Io(std::io::Error::other(e))))??;
                cluster.create_database_if_missing(EMBEDDED_DATABASE).await?;
                cluster.url(EMBEDDED_DATABASE)
            }
        };
        let store = Store::connect(&url).await?;
        store.migrate().await?;
        Ok(store)
    }

    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(30))
            .connect(url)
            .await
            .map_err(StoreError::Connect)?;
        Ok(Store { pool })
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }
}

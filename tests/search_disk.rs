//! The search index and its disk, through a real server: a full disk (a tantivy directory
//! that refuses writes while a switch is on, as ENOSPC does) makes the index stale, told in
//! `/readyz`, `/metrics` and the log, and the next update after the space is back succeeds
//! without a restart; superseded index directories are removed after each rebuild and at
//! start-up, never the one served nor one being built.

mod common;

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use annuaire::http::HookSettings;
use annuaire::import;
use annuaire::keys::{self, Scope};
use annuaire::search::IndexStorage;
use annuaire::server::ServerConfig;
use serde_json::Value;
use tantivy::directory::error::{DeleteError, LockError, OpenReadError, OpenWriteError};
use tantivy::directory::{
    AntiCallToken, Directory, DirectoryLock, FileHandle, Lock, MmapDirectory, TerminatingWrite, WatchCallback,
    WatchHandle, WritePtr,
};

use common::server::{TestServer, wait_for};
use common::{lenient, published_db, samples};

/// A disk with no space left (ENOSPC) while `full` is on: files cannot be created, written
/// or replaced; reading and deleting work, as on a real full disk.
#[derive(Debug, Clone)]
struct FullDisk {
    inner: MmapDirectory,
    full: Arc<AtomicBool>,
}

fn no_space() -> io::Error {
    io::Error::from_raw_os_error(libc::ENOSPC)
}

impl Directory for FullDisk {
    fn get_file_handle(&self, path: &Path) -> Result<Arc<dyn FileHandle>, OpenReadError> {
        self.inner.get_file_handle(path)
    }

    fn delete(&self, path: &Path) -> Result<(), DeleteError> {
        self.inner.delete(path)
    }

    fn exists(&self, path: &Path) -> Result<bool, OpenReadError> {
        self.inner.exists(path)
    }

    fn open_write(&self, path: &Path) -> Result<WritePtr, OpenWriteError> {
        if self.full.load(Ordering::SeqCst) {
            return Err(OpenWriteError::wrap_io_error(no_space(), path.to_owned()));
        }
        let inner = self.inner.open_write(path)?;
        Ok(BufWriter::new(Box::new(Filling {
            inner,
            full: Arc::clone(&self.full),
        })))
    }

    fn atomic_read(&self, path: &Path) -> Result<Vec<u8>, OpenReadError> {
        self.inner.atomic_read(path)
    }

    fn atomic_write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        if self.full.load(Ordering::SeqCst) {
            return Err(no_space());
        }
        self.inner.atomic_write(path, data)
    }

    fn sync_directory(&self) -> io::Result<()> {
        self.inner.sync_directory()
    }

    fn acquire_lock(&self, lock: &Lock) -> Result<DirectoryLock, LockError> {
        self.inner.acquire_lock(lock)
    }

    fn watch(&self, callback: WatchCallback) -> tantivy::Result<WatchHandle> {
        self.inner.watch(callback)
    }
}

/// A file being written on the full-at-times disk.
struct Filling {
    inner: WritePtr,
    full: Arc<AtomicBool>,
}

impl Write for Filling {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if self.full.load(Ordering::SeqCst) {
            return Err(no_space());
        }
        self.inner.write(bytes)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.full.load(Ordering::SeqCst) {
            return Err(no_space());
        }
        self.inner.flush()
    }
}

impl TerminatingWrite for Filling {
    fn terminate_ref(&mut self, token: AntiCallToken) -> io::Result<()> {
        self.flush()?;
        self.inner.terminate_ref(token)
    }
}

/// Everything this test binary logs (one subscriber per process, shared by its tests;
/// each test looks for its own paths).
fn logged() -> Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    Arc::clone(LOG.get_or_init(|| {
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&log);
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(move || Sink(Arc::clone(&sink)))
            .init();
        log
    }))
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

async fn readyz(server: &TestServer) -> (u16, Value) {
    let reply = server.client.get(server.url("/readyz")).send().await.unwrap();
    (reply.status().as_u16(), reply.json().await.unwrap())
}

async fn stale_gauge(server: &TestServer) -> Option<String> {
    let metrics = server.metrics().await;
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("annuaire_search_stale "))
        .map(str::to_owned)
}

/// Waits until `/readyz` says `search` is `state` at `generation`.
async fn wait_for_search(server: &TestServer, state: &str, generation: i64) {
    wait_for(
        &format!("search {state} at generation {generation}"),
        Duration::from_secs(30),
        || async move {
            let (_, ready) = readyz(server).await;
            ready["search"] == state && ready["search_generation"] == generation
        },
    )
    .await;
}

#[tokio::test]
async fn a_full_disk_makes_the_index_stale_and_it_recovers_without_a_restart() {
    let log = logged();
    let db = published_db("ps-libreacces").await;
    let pool = db.pool.clone();
    let (_, search_key) = keys::create(&pool, "admin", &[Scope::Search]).await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let root = home.path().join("search");
    let full = Arc::new(AtomicBool::new(false));
    let switch = Arc::clone(&full);
    let config = ServerConfig {
        search_dir: Some(root.clone()),
        search_storage: IndexStorage::with(move |path| {
            Ok(Box::new(FullDisk {
                inner: MmapDirectory::open(path).map_err(io::Error::other)?,
                full: Arc::clone(&switch),
            }))
        }),
        ..ServerConfig::new(HookSettings::default()).unwrap()
    };
    let server = TestServer::start_with(pool.clone(), config).await;
    wait_for_search(&server, "ready", 1).await;
    assert_eq!(stale_gauge(&server).await.as_deref(), Some("0"));
    // The served directory, as the server names it.
    let served = root.join(current(&root));

    // The disk fills; the next generation cannot be written.
    full.store(true, Ordering::SeqCst);
    let day2 = import::import(
        &pool,
        samples().join("ps-libreacces-day2").to_str().unwrap(),
        &lenient(),
    )
    .await
    .expect("day 2");
    wait_for_search(&server, "stale", 1).await;
    let (status, ready) = readyz(&server).await;
    assert_eq!(status, 200, "a stale index still serves: {ready}");
    assert_eq!(ready["ready"], true, "{ready}");
    assert_eq!(stale_gauge(&server).await.as_deref(), Some("1"));
    let text = String::from_utf8_lossy(&log.lock().unwrap()).into_owned();
    let served_text = served.display().to_string();
    assert!(
        text.lines()
            .any(|l| l.contains("no space left on device") && l.contains(&served_text)),
        "a line names the cause and {served_text}:\n{text}"
    );
    // Meanwhile the generation indexed answers.
    assert_eq!(
        server.get("/v1/professionals?q=dupont", &search_key).await.status(),
        200
    );

    // Space again: the next attempt writes, with a new writer, in this same process.
    full.store(false, Ordering::SeqCst);
    wait_for_search(&server, "ready", day2.id.0).await;
    assert_eq!(stale_gauge(&server).await.as_deref(), Some("0"));
    let added: Value = server
        .get("/v1/professionals?q=gauthier", &search_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(added["results"][0]["national_id"], "810010583929", "{added}");
    server.stop().await;
}

/// The build directories under `root` (`index-…`), by name.
fn builds(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("index-"))
        .collect();
    names.sort_unstable();
    names
}

/// The directory `root/current` points at, by name.
fn current(root: &Path) -> String {
    std::fs::read_link(root.join("current"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// A purge that took someone, as the publication follower sees it (the latest such
/// `purge_run`): the search index is rebuilt once after it.
async fn purged(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO purge_run (retention_days, cutoff, professionals, records, removals, finished_at)
         VALUES (400, now(), 1, 1, 1, now()) RETURNING id",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn only_the_served_index_directory_remains_after_rebuilds() {
    let db = published_db("ps-libreacces").await;
    let pool = db.pool.clone();
    let (_, search_key) = keys::create(&pool, "admin", &[Scope::Search]).await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let root = home.path().join("search");
    let config = ServerConfig {
        search_dir: Some(root.clone()),
        ..ServerConfig::new(HookSettings::default()).unwrap()
    };
    let server = TestServer::start_with(pool.clone(), config).await;
    wait_for_search(&server, "ready", 1).await;
    let first = current(&root);
    for _ in 0..2 {
        let purge = purged(&pool).await;
        let root = root.clone();
        wait_for(
            &format!("the rebuild after purge {purge}, alone under the search directory"),
            Duration::from_secs(30),
            || {
                let root = root.clone();
                async move {
                    let marker = std::fs::read_to_string(root.join("purge")).unwrap_or_default();
                    marker.trim() == purge.to_string() && builds(&root) == [current(&root)]
                }
            },
        )
        .await;
    }
    assert_ne!(current(&root), first, "rebuilt");
    let (_, ready) = readyz(&server).await;
    assert_eq!(ready["search"], "ready", "{ready}");
    assert_eq!(
        server.get("/v1/professionals?q=dupont", &search_key).await.status(),
        200,
        "the served directory is in place"
    );
    server.stop().await;
}

#[tokio::test]
async fn stray_directories_are_removed_at_start_up_but_not_one_being_built() {
    let db = published_db("ps-libreacces").await;
    let pool = db.pool.clone();
    let (_, search_key) = keys::create(&pool, "admin", &[Scope::Search]).await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let root = home.path().join("search");
    let config = || ServerConfig {
        search_dir: Some(root.clone()),
        ..ServerConfig::new(HookSettings::default()).unwrap()
    };
    let server = TestServer::start_with(pool.clone(), config()).await;
    wait_for_search(&server, "ready", 1).await;
    server.stop().await;
    let served = current(&root);

    // Left by an earlier process: an old build, a build that died part-way (its lock file
    // held by nobody), and one another process is building now (its lock held).
    let stray = |name: &str| -> PathBuf {
        let dir = root.join(name);
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("meta.json"), b"{}").unwrap();
        dir
    };
    let old = stray("index-0-1000");
    let died = stray("index-0-2000");
    std::fs::write(died.join("building.lock"), b"").unwrap();
    let building = stray("index-9-3000");
    let lock = std::fs::File::create(building.join("building.lock")).unwrap();
    lock.try_lock().unwrap();

    let server = TestServer::start_with(pool.clone(), config()).await;
    wait_for_search(&server, "ready", 1).await;
    wait_for(
        "the stray directories to be removed",
        Duration::from_secs(30),
        || async { !old.exists() && !died.exists() },
    )
    .await;
    assert_eq!(current(&root), served, "the index on disk was opened, not rebuilt");
    assert_eq!(
        builds(&root),
        [served.clone(), "index-9-3000".to_owned()],
        "the served one and the one being built stay"
    );
    assert_eq!(
        server.get("/v1/professionals?q=dupont", &search_key).await.status(),
        200
    );
    server.stop().await;
    drop(lock);
}

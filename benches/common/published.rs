//! The set-up the serving benchmarks share: the day-0 extract generated (cached), a
//! database of their own on the embedded cluster with it imported, API keys, and a sample of
//! the published ids. The database is dropped when the set-up goes out of scope.

use std::path::PathBuf;

use annuaire::store::embedded::EmbeddedCluster;

use super::{annuaire, generate, measure, psql};

pub struct Published {
    pub professionals: u64,
    pub dir: PathBuf,
    pub cluster: EmbeddedCluster,
    pub database: String,
    pub url: String,
    pub runtime: tokio::runtime::Runtime,
    /// Up to 20,000 national ids of professionals not removed, in random order.
    pub ids: Vec<String>,
}

impl Published {
    /// Sets up `bench_<name>_<pid>` with the day-0 extract published.
    pub fn set_up(name: &str) -> Published {
        let professionals = super::professionals();
        let dir = super::work_dir();
        println!(
            "{name} benchmark: {professionals} professionals, work dir {}",
            dir.display()
        );
        let day0 = generate(&dir, professionals, 0);
        let cluster = EmbeddedCluster::ensure_running(&dir.join("pg")).expect("embedded cluster");
        let database = format!("bench_{name}_{}", std::process::id());
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        runtime
            .block_on(cluster.create_database_if_missing(&database))
            .expect("database");
        let url = cluster.url(&database);
        let imported = measure(
            annuaire()
                .env("DATABASE_URL", &url)
                .env("RUST_LOG", "warn")
                .arg("import")
                .arg(&day0),
        );
        println!("day 0 imported in {:.1} s", imported.wall.as_secs_f64());
        let ids = psql(
            &cluster,
            &database,
            "SELECT national_id FROM professional WHERE removed_at IS NULL ORDER BY random() LIMIT 20000",
        )
        .args(["-A", "-t"])
        .output()
        .expect("ids");
        let ids: Vec<String> = String::from_utf8_lossy(&ids.stdout)
            .lines()
            .map(str::to_owned)
            .collect();
        assert!(ids.len() > 1000, "ids sampled");
        Published {
            professionals,
            dir,
            cluster,
            database,
            url,
            runtime,
            ids,
        }
    }

    /// A new API key named `name` with `scope` (comma-separated scopes).
    pub fn key(&self, name: &str, scope: &str) -> String {
        let out = annuaire()
            .env("DATABASE_URL", &self.url)
            .args(["keys", "create", "--name", name, "--scope", scope])
            .output()
            .expect("keys");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for Published {
    /// Also after a failed run, so that no benchmark database is left behind.
    fn drop(&mut self) {
        let drop = format!("DROP DATABASE IF EXISTS {}", self.database);
        let _ = psql(&self.cluster, "postgres", &drop).status();
    }
}

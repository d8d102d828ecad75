//! A private PostgreSQL cluster for the tests that stop and restart their database (the
//! shared test cluster must stay up for the others).

use std::path::PathBuf;

use annuaire::store::embedded::EmbeddedCluster;

pub struct PrivateCluster {
    home: PathBuf,
    pub url: String,
}

impl PrivateCluster {
    /// Starts a fresh cluster with an `annuaire` database.
    pub async fn start(name: &str) -> PrivateCluster {
        let home = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-pg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&home);
        std::fs::create_dir_all(&home).expect("cluster home");
        let mut private = PrivateCluster {
            home,
            url: String::new(),
        };
        let cluster = private.up().await;
        cluster.create_database_if_missing("annuaire").await.expect("database");
        private.url = cluster.url("annuaire");
        private
    }

    async fn up(&self) -> EmbeddedCluster {
        let home = self.home.clone();
        tokio::task::spawn_blocking(move || EmbeddedCluster::ensure_running(&home).expect("private cluster starts"))
            .await
            .expect("start task")
    }

    pub async fn restart(&self) {
        self.up().await;
    }

    pub async fn stop(&self) {
        let home = self.home.clone();
        tokio::task::spawn_blocking(move || EmbeddedCluster::stop(&home).expect("cluster stops"))
            .await
            .expect("stop task");
    }

    /// Where the cluster lives (its data directory and socket are under it).
    pub fn home(&self) -> &std::path::Path {
        &self.home
    }

    /// Stops the cluster and deletes it.
    pub async fn remove(self) {
        self.stop().await;
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

/// A test that fails (or forgets `remove`) must not leave its server running for the rest
/// of the suite: stop it here, synchronously (`pg_ctl stop` is a child process), and say so
/// on stderr when that fails: a panic in a drop during a failed test's unwinding aborts.
impl Drop for PrivateCluster {
    fn drop(&mut self) {
        // After `remove` there is nothing left to stop.
        if !self.home.exists() {
            return;
        }
        if let Err(error) = EmbeddedCluster::stop(&self.home) {
            eprintln!("private cluster under {} did not stop: {error}", self.home.display());
        }
    }
}

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
        let private = PrivateCluster {
            home,
            url: String::new(),
        };
        let cluster = private.up().await;
        cluster.create_database_if_missing("annuaire").await.expect("database");
        PrivateCluster {
            url: cluster.url("annuaire"),
            ..private
        }
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

    /// Stops the cluster and deletes it.
    pub async fn remove(self) {
        self.stop().await;
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

//! `annuaire serve` as deployed, a child process with its log on a pipe, for the tests
//! that read what it logs.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::server::wait_for;

pub struct Serving {
    child: Child,
    pub base: String,
}

impl Serving {
    /// Starts `annuaire serve ARGS --listen …` on `database_url` with `env` added, and
    /// waits until it is ready.
    pub async fn start(database_url: &str, args: &[&str], env: &[(&str, &str)]) -> Serving {
        let port = super::free_port();
        let child = Command::new(super::cargo_bin())
            .arg("serve")
            .args(args)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("DATABASE_URL", database_url)
            .env("RUST_LOG", "info")
            .env("ANNUAIRE_HOME", tempfile::tempdir().unwrap().keep())
            .env("ANNUAIRE_JOBS_DIR", "/nonexistent")
            .env_remove("NO_COLOR")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let ready = format!("{base}/readyz");
        wait_for("the server to be ready", Duration::from_secs(30), || {
            let ready = ready.clone();
            async move { reqwest::get(&ready).await.is_ok_and(|r| r.status() == 200) }
        })
        .await;
        Serving { child, base }
    }

    /// Stops the server and gives everything it logged.
    pub fn stop(mut self) -> String {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let mut logged = String::new();
        self.child.stderr.take().unwrap().read_to_string(&mut logged).unwrap();
        logged
    }
}

//! A real server on 127.0.0.1:0 for the API tests, and waiting on conditions with a deadline.

use std::future::Future;
use std::time::{Duration, Instant};

use annuaire::http::HookSettings;
use annuaire::server::ServerConfig;
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub struct TestServer {
    pub base: String,
    pub client: reqwest::Client,
    shutdown: CancellationToken,
    task: JoinHandle<std::io::Result<()>>,
}

impl TestServer {
    /// Starts the server and waits until it is ready (a generation loaded).
    pub async fn start(pool: PgPool, hooks: HookSettings) -> TestServer {
        TestServer::start_with(pool, ServerConfig::new(hooks).unwrap()).await
    }

    pub async fn start_with(pool: PgPool, config: ServerConfig) -> TestServer {
        let server = TestServer::start_unready(pool, config).await;
        let client = server.client.clone();
        let url = server.url("/readyz");
        wait_for("the server to be ready", Duration::from_secs(30), || {
            let client = client.clone();
            let url = url.clone();
            async move { client.get(&url).send().await.is_ok_and(|r| r.status() == 200) }
        })
        .await;
        server
    }

    pub async fn start_unready(pool: PgPool, config: ServerConfig) -> TestServer {
        annuaire::install_crypto_provider();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(annuaire::server::run(pool, listener, config, shutdown.clone()));
        TestServer {
            base,
            client: reqwest::Client::new(),
            shutdown,
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The Prometheus text of `/metrics` (an open route).
    pub async fn metrics(&self) -> String {
        let reply = self
            .client
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("/metrics answers");
        reply.text().await.expect("a text body")
    }

    pub async fn get(&self, path: &str, key: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.expect("server task").expect("server ended cleanly");
    }
}

/// Polls `condition` until it holds, failing the test at the deadline.
pub async fn wait_for<F, Fut>(what: &str, deadline: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let until = Instant::now() + deadline;
    while !condition().await {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl TestServer {
    /// Waits until `GET path` with `key` answers `status`.
    pub async fn wait_for_status(&self, what: &str, path: &str, key: &str, status: u16) {
        let (client, url, key) = (self.client.clone(), self.url(path), key.to_owned());
        wait_for(what, Duration::from_secs(20), || {
            let (client, url, key) = (client.clone(), url.clone(), key.clone());
            async move {
                client
                    .get(&url)
                    .bearer_auth(&key)
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == status)
            }
        })
        .await;
    }

    /// Waits until the body of `GET path` with `key` contains `needle`.
    pub async fn wait_for_body(&self, what: &str, path: &str, key: &str, needle: &str) {
        let (client, url, key, needle) = (self.client.clone(), self.url(path), key.to_owned(), needle.to_owned());
        wait_for(what, Duration::from_secs(30), || {
            let (client, url, key, needle) = (client.clone(), url.clone(), key.clone(), needle.clone());
            async move {
                match client.get(&url).bearer_auth(&key).send().await {
                    Ok(r) => r.text().await.is_ok_and(|t| t.contains(&needle)),
                    Err(_) => false,
                }
            }
        })
        .await;
    }
}

/// True when the server closes the connection (EOF or reset) within `deadline`; false
/// when it is still open then.
pub async fn closed_within(stream: &mut tokio::net::TcpStream, deadline: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 4096];
    tokio::time::timeout(deadline, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

//! A real headless Chromium driven through chromedriver's WebDriver protocol (plain HTTP
//! JSON, so no driver crate): enough to type, click, read and wait like a person. The
//! driver and every browser process it starts are killed when the `Browser` is dropped.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::tools;

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// The browser the driver starts (Debian's `chromium` package).
const CHROMIUM: &str = "/usr/bin/chromium";

const INSTALL: &str = "apt-get install chromium chromium-driver (.ci/setup does)";

/// Whether Chromium and chromedriver are installed (the policy of `tools::require`: a
/// failure under CI, a skip with a message elsewhere).
pub fn installed() -> bool {
    // Both checked, so a machine lacking both hears of both.
    let browser = tools::require(CHROMIUM, INSTALL);
    let driver = tools::require("chromedriver", INSTALL);
    browser && driver
}

pub struct Browser {
    driver: Child,
    client: reqwest::Client,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium (Debian's `chromium`, `chromium-driver`);
    /// check `installed()` first.
    pub async fn start() -> Browser {
        annuaire::install_crypto_provider();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        // A process group of its own: the browser processes the driver starts join it, and
        // killing the group leaves none behind (killing the driver alone orphans them).
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("chromedriver does not start ({INSTALL}): {e}"));
        let client = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !client
            .get(format!("{base}/status"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir().expect("profile dir");
        // As root, in a sandboxless container, and with no network but loopback.
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--window-size=1280,900".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args}
        }}});
        let created: Value = client
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await
            .expect("session")
            .json()
            .await
            .expect("json");
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"))
            .to_owned();
        Browser {
            driver,
            client,
            session: format!("{base}/session/{session}"),
            _profile: profile,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let response = self
            .client
            .request(method, format!("{}{path}", self.session))
            .json(&body)
            .send()
            .await
            .expect("webdriver");
        let value: Value = response.json().await.expect("webdriver json");
        value["value"].clone()
    }

    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", json!({"url": url})).await;
    }

    /// The element for `css`, waiting until it exists.
    pub async fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let found = self
                .call(
                    reqwest::Method::POST,
                    "/element",
                    json!({"using": "css selector", "value": css}),
                )
                .await;
            if let Some(id) = found[ELEMENT].as_str() {
                return id.to_owned();
            }
            assert!(Instant::now() < deadline, "no element {css}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/value"),
            json!({"text": text}),
        )
        .await;
    }

    pub async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.call(reqwest::Method::POST, &format!("/element/{element}/click"), json!({}))
            .await;
    }

    /// Runs JavaScript in the page and returns its result.
    pub async fn eval(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            json!({"script": script, "args": []}),
        )
        .await
    }

    /// Waits until `script` returns true.
    pub async fn wait_until(&self, what: &str, script: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.eval(script).await != Value::Bool(true) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A PNG of the page, for a person to look at.
    pub async fn screenshot(&self, path: &Path) {
        use base64_decode::decode;
        let data = self.call(reqwest::Method::GET, "/screenshot", json!({})).await;
        if let Some(text) = data.as_str() {
            let _ = std::fs::write(path, decode(text));
        }
    }
}

impl Drop for Browser {
    /// Kills the driver's process group (the driver, Chromium and its helpers), whether the
    /// test passed or panicked.
    fn drop(&mut self) {
        if let Ok(group) = i32::try_from(self.driver.id()) {
            kill_group(group);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

#[allow(unsafe_code)] // kill(2): std can signal a child, not a process group
fn kill_group(group: i32) {
    // SAFETY: kill takes plain integers and touches no memory of ours; a negative pid names
    // the group, which is the driver's own (`process_group(0)` above).
    unsafe {
        libc::kill(-group, libc::SIGKILL);
    }
}

/// Base64 without a crate: the screenshot is the only use.
mod base64_decode {
    pub fn decode(text: &str) -> Vec<u8> {
        let value = |c: u8| match c {
            b'A'..=b'Z' => Some(c - b'A'),
            b'a'..=b'z' => Some(c - b'a' + 26),
            b'0'..=b'9' => Some(c - b'0' + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        };
        let bits: Vec<u8> = text.bytes().filter_map(value).collect();
        let mut out = Vec::with_capacity(bits.len() * 3 / 4);
        for chunk in bits.chunks(4) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |acc, (i, v)| acc | (u32::from(*v) << (18 - 6 * i)));
            let bytes = n.to_be_bytes();
            out.extend_from_slice(&bytes[1..chunk.len()]);
        }
        out
    }
}

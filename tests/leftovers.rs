//! What a process killed mid-way leaves on disk (a partial download under the home's
//! `work`, a partial export beside its output) is removed when the next download, server
//! or export starts, and never while a live process still writes it (issue 24).

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use annuaire::download::{DownloadSettings, Downloader};
use common::server::wait_for;
use common::source::SourceServer;
use common::{annuaire_cli, cargo_bin, free_port, published_db, samples};

/// A partial download as a killed process leaves it: its private directory and half a file.
fn plant_partial_download(work: &Path, name: &str) -> std::path::PathBuf {
    let dir = work.join(format!("annuaire-download-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("PS_LibreAcces_202611250900.zip"), b"PK\x03\x04 half of it").unwrap();
    dir
}

async fn extract_server() -> SourceServer {
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("extract.zip");
    common::fixtures::zip_dir(&samples().join("ps-libreacces"), &zip);
    SourceServer::start("PS_LibreAcces_202611250900.zip", std::fs::read(&zip).unwrap(), vec![]).await
}

#[tokio::test]
async fn a_download_removes_partial_downloads_but_not_a_live_ones_file() {
    let home = tempfile::tempdir().unwrap();
    let work = home.path().join("work");
    let killed = plant_partial_download(&work, "killed");
    let unrelated = work.join("notes.txt");
    std::fs::write(&unrelated, b"not ours").unwrap();
    let source = extract_server().await;
    let downloader = Downloader::new(DownloadSettings::default()).unwrap();
    let cancel = CancellationToken::new();

    let first = downloader
        .fetch(&source.url, &work, 0, &cancel)
        .await
        .expect("first download");
    assert!(!killed.exists(), "the killed process's partial download is removed");
    assert!(unrelated.exists(), "only the downloads' own names are removed");
    assert!(first.path.is_file());

    // While `first` lives, its process is downloading (or importing) there: a second
    // download removes nothing, neither `first` nor what looks like a leftover.
    let unclear = plant_partial_download(&work, "unclear");
    let second = downloader
        .fetch(&source.url, &work, 0, &cancel)
        .await
        .expect("second download");
    assert!(first.path.is_file(), "a live download's file is never removed");
    assert!(
        unclear.exists(),
        "nothing is swept while a live process holds the directory"
    );
    drop((first, second));

    let third = downloader
        .fetch(&source.url, &work, 0, &cancel)
        .await
        .expect("third download");
    assert!(
        !unclear.exists(),
        "swept by the next start once nobody holds the directory"
    );
    let left: Vec<_> = std::fs::read_dir(&work)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("annuaire-download-"))
        .collect();
    assert_eq!(left.len(), 1, "only the live download's directory: {left:?}");
    drop(third);
}

#[tokio::test]
async fn serve_removes_partial_downloads_at_start() {
    let db = published_db("ps-libreacces").await;
    let home = tempfile::tempdir().unwrap();
    let killed = plant_partial_download(&home.path().join("work"), "killed");
    let port = free_port();
    let mut child = Command::new(cargo_bin())
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("DATABASE_URL", &db.url)
        .env("RUST_LOG", "warn")
        .env("ANNUAIRE_HOME", home.path())
        .env("ANNUAIRE_JOBS_DIR", "/nonexistent")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve starts");
    let ready = format!("http://127.0.0.1:{port}/readyz");
    wait_for("the server to be ready", Duration::from_secs(30), || {
        let ready = ready.clone();
        async move { reqwest::get(&ready).await.is_ok_and(|r| r.status() == 200) }
    })
    .await;
    // The removal comes before the server answers.
    let removed = !killed.exists();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        removed,
        "the partial download left in the home's work directory is removed"
    );
}

#[tokio::test]
async fn an_export_removes_partial_exports_beside_its_output() {
    let db = published_db("ps-libreacces").await;
    let dir = tempfile::tempdir().unwrap();
    let killed = dir.path().join("directory-2026-11-24.ndjson.annuaire-partial");
    std::fs::write(&killed, b"{\"national_id\":\"8100").unwrap();
    let unrelated = dir.path().join("directory-2026-11-23.ndjson");
    std::fs::write(&unrelated, b"an earlier, complete export").unwrap();

    let out = dir.path().join("directory-2026-11-25.ndjson");
    let run = annuaire_cli(&db.url, &["export", "--out", out.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(0), "{}", String::from_utf8_lossy(&run.stderr));
    assert!(!killed.exists(), "the killed export's partial file is removed");
    assert!(unrelated.exists(), "a complete export stays");
    let text = std::fs::read_to_string(&out).unwrap();
    let documents = text
        .lines()
        .filter(|line| serde_json::from_str::<serde_json::Value>(line).is_ok())
        .count();
    assert!(
        documents >= 17 && documents == text.lines().count(),
        "the new export is whole: {text}"
    );
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["directory-2026-11-23.ndjson", "directory-2026-11-25.ndjson"]);
}

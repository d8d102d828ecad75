//! Settings from a config file, beneath the environment and the flags: `config show` says
//! each effective value and where it comes from, secrets masked; a bad file names the key
//! and the file; a number out of its setting's range (NaN included) is refused with the
//! setting's name, whether a flag, the environment or the file gives it.

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

/// The command run with the embedded cluster off and no database: a value the parser
/// accepts ends at the missing `DATABASE_URL` (exit 1), never at a database.
fn offline(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(common::cargo_bin());
    command
        .args(args)
        .env("RUST_LOG", "warn")
        .env("ANNUAIRE_EMBEDDED", "off");
    for name in [
        "ANNUAIRE_CONFIG",
        "DATABASE_URL",
        "ANNUAIRE_HOME",
        "ANNUAIRE_MAX_REMOVED_PCT",
        "ANNUAIRE_MAX_CHANGED_PCT",
        "ANNUAIRE_MAX_REJECT_PCT",
        "ANNUAIRE_MAX_LINE_BYTES",
        "ANNUAIRE_IMPORT_NICE",
        "ANNUAIRE_JWT_TTL_SECONDS",
        "ANNUAIRE_RETENTION_DAYS",
    ] {
        command.env_remove(name);
    }
    // Set after the removals: the last word on a variable is the command's.
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().unwrap()
}

/// A usage error (exit 2) that names the setting and says why.
fn assert_refused(out: &Output, setting: &str, value: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{setting} = {value}: {stderr}");
    assert!(
        stderr.contains(setting) && stderr.contains(value) && stderr.contains(" is not "),
        "{setting} = {value}: {stderr}"
    );
}

#[test]
fn a_threshold_that_is_not_a_number_or_out_of_range_is_refused_with_its_name() {
    // Flags.
    for (args, setting, value) in [
        (&["--max-removed-pct", "nan"][..], "--max-removed-pct", "nan"),
        (&["--max-removed-pct", "inf"], "--max-removed-pct", "inf"),
        (&["--max-changed-pct=-1"], "--max-changed-pct", "-1"),
        (&["--max-reject-pct", "101"], "--max-reject-pct", "101"),
        (&["--max-line-bytes", "0"], "--max-line-bytes", "0"),
        (&["--nice", "99"], "--nice", "99"),
    ] {
        let mut all = vec!["import", "extract.zip"];
        all.extend_from_slice(args);
        assert_refused(&offline(&all, &[]), setting, value);
    }
    let out = offline(&["serve", "--jwt-ttl-seconds", "29"], &[]);
    assert_refused(&out, "--jwt-ttl-seconds", "29");
    let out = offline(&["purge", "--retention-days", "36501"], &[]);
    assert_refused(&out, "--retention-days", "36501");

    // The environment.
    for (env, setting, value) in [
        ("ANNUAIRE_MAX_REMOVED_PCT", "--max-removed-pct", "NaN"),
        ("ANNUAIRE_MAX_CHANGED_PCT", "--max-changed-pct", "-inf"),
        ("ANNUAIRE_MAX_REJECT_PCT", "--max-reject-pct", "101"),
        ("ANNUAIRE_MAX_LINE_BYTES", "--max-line-bytes", "0"),
        ("ANNUAIRE_IMPORT_NICE", "--nice", "99"),
    ] {
        assert_refused(&offline(&["import", "extract.zip"], &[(env, value)]), setting, value);
    }

    // The config file: checked as it is read, whatever the command.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("annuaire.toml");
    let path = file.to_str().unwrap();
    for (line, key, value) in [
        ("max-removed-pct = nan", "max-removed-pct", "NaN"),
        ("max_removed_pct = \"NaN\"", "max_removed_pct", "NaN"),
        ("max-changed-pct = inf", "max-changed-pct", "inf"),
        ("max-reject-pct = 101", "max-reject-pct", "101"),
        ("max-reject-pct = -1.0", "max-reject-pct", "-1"),
        ("nice = 99", "nice", "99"),
        ("max-line-bytes = 0", "max-line-bytes", "0"),
        ("jwt-ttl-seconds = 86401", "jwt-ttl-seconds", "86401"),
        ("retention-days = 0", "retention-days", "0"),
    ] {
        std::fs::write(&file, format!("{line}\n")).unwrap();
        let out = offline(&["--config", path, "config", "show"], &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{line}: {stderr}");
        assert!(
            stderr.contains(path) && stderr.contains(key) && stderr.contains(value) && stderr.contains(" is not "),
            "{line}: {stderr}"
        );
    }
}

#[test]
fn the_bounds_of_each_range_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("annuaire.toml");
    let path = file.to_str().unwrap();
    let lows = "max-removed-pct = 0\nmax-changed-pct = 0.0\nmax-reject-pct = 0\nnice = 0\nmax-line-bytes = 4096\njwt-ttl-seconds = 30\nretention-days = 1\n";
    let highs = "max-removed-pct = 100\nmax-changed-pct = 100.0\nmax-reject-pct = 100\nnice = 19\nmax-line-bytes = 67108864\njwt-ttl-seconds = 86400\nretention-days = 36500\n";
    for (text, nice) in [(lows, "0"), (highs, "19")] {
        std::fs::write(&file, text).unwrap();
        let all = shown(&offline(&["--config", path, "config", "show", "--json"], &[]));
        assert_eq!(setting(&all, "nice")["value"], nice);
        assert_eq!(setting(&all, "nice")["source"], "file");
    }

    // Flags and the environment: parsed, then stopped by the missing database.
    for (args, env) in [
        (
            &[
                "--max-removed-pct",
                "0",
                "--max-changed-pct",
                "100",
                "--max-line-bytes",
                "4096",
                "--nice",
                "19",
            ][..],
            &[("ANNUAIRE_MAX_REJECT_PCT", "100")][..],
        ),
        (
            &[
                "--max-removed-pct",
                "100",
                "--max-reject-pct",
                "0",
                "--max-line-bytes",
                "67108864",
            ],
            &[("ANNUAIRE_MAX_CHANGED_PCT", "0"), ("ANNUAIRE_IMPORT_NICE", "0")],
        ),
    ] {
        let mut all = vec!["import", "extract.zip"];
        all.extend_from_slice(args);
        let out = offline(&all, env);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains("DATABASE_URL is required"), "{args:?}: {stderr}");
    }
}

/// Credentials in a URL are masked wherever `config show` prints one: `?password=` in
/// `database-url` as well as its `user:password@`, and each webhook URL's password and
/// query values (tokens), in both output forms.
#[test]
fn config_show_masks_the_credentials_of_every_url() {
    let env = [
        (
            "DATABASE_URL",
            "postgres://annuaire@db.internal/annuaire?password=hunter2&sslmode=require",
        ),
        (
            "ANNUAIRE_PUBLISH_WEBHOOKS",
            "https://hook:s3cret@a.example/in?token=t0ken,https://b.example/in",
        ),
    ];
    let all = shown(&annuaire(&["config", "show", "--json"], &env));
    assert_eq!(
        setting(&all, "database-url")["value"],
        "postgres://annuaire@db.internal/annuaire?password=***&sslmode=***"
    );
    assert_eq!(
        setting(&all, "publish-webhook")["value"],
        "https://hook:***@a.example/in?token=***,https://b.example/in"
    );
    let text = annuaire(&["config", "show"], &env);
    assert!(text.status.success(), "{}", String::from_utf8_lossy(&text.stderr));
    for out in [
        serde_json::to_string(&all).unwrap(),
        String::from_utf8_lossy(&text.stdout).into_owned(),
    ] {
        assert!(out.contains("https://b.example/in"), "{out}");
        for secret in ["hunter2", "s3cret", "t0ken"] {
            assert!(!out.contains(secret), "{secret} shown:\n{out}");
        }
    }
}

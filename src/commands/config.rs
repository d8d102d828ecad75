//! `annuaire config show`: the effective settings and where each comes from (a flag, the
//! environment, the config file, or the default), secrets and URLs' credentials masked.

use std::collections::BTreeSet;

use clap::ArgMatches;
use clap::parser::ValueSource;
use serde::Serialize;

use super::cli::ENVIRONMENT_ONLY;
use super::{Outcome, print_json};
use crate::config::{self, Setting};

#[derive(Serialize)]
struct Shown {
    key: String,
    env: String,
    /// Masked for secrets; absent when unset.
    value: Option<String>,
    source: &'static str,
}

/// What `config show` prints of a value: any URL with its credentials masked (each URL of a
/// list setting: webhook URLs carry tokens too), `database-url` masked the same way, other
/// secrets `***`.
fn mask(setting: &Setting, value: &str) -> String {
    if setting.secret && setting.env != "DATABASE_URL" {
        return "***".to_owned();
    }
    if setting.secret {
        return config::mask_url(value).unwrap_or_else(|| "***".to_owned());
    }
    // A list setting's values are comma-separated, as clap reads them from the environment.
    value
        .split(',')
        .map(|item| {
            if item.contains("://") {
                config::mask_url(item.trim()).unwrap_or_else(|| "***".to_owned())
            } else {
                item.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

pub fn show(matches: &ArgMatches, from_file: &[String], json: bool) -> anyhow::Result<Outcome> {
    let from_file: BTreeSet<&str> = from_file.iter().map(String::as_str).collect();
    let mut shown = Vec::new();
    for setting in config::settings().into_values() {
        if setting.key == "config" {
            continue;
        }
        let flag = matches
            .try_get_raw(&setting.key.replace('-', "_"))
            .ok()
            .flatten()
            .filter(|_| matches.value_source(&setting.key.replace('-', "_")) == Some(ValueSource::CommandLine));
        let (value, source) = if let Some(mut raw) = flag {
            (raw.next().map(|v| v.to_string_lossy().into_owned()), "flag")
        } else if let Ok(value) = std::env::var(&setting.env) {
            let source = if from_file.contains(setting.env.as_str()) {
                "file"
            } else {
                "environment"
            };
            (Some(value), source)
        } else {
            (default_of(&setting.arg), "default")
        };
        shown.push(Shown {
            value: value.map(|v| mask(&setting, &v)),
            key: setting.key,
            env: setting.env,
            source,
        });
    }
    for env in ENVIRONMENT_ONLY.iter().filter(|e| e.ends_with("_SECRET")) {
        shown.push(Shown {
            key: String::new(),
            env: (*env).to_owned(),
            value: std::env::var_os(env).map(|_| "***".to_owned()),
            source: "environment",
        });
    }
    if json {
        print_json(&shown)?;
        return Ok(Outcome::Success);
    }
    for s in &shown {
        println!(
            "{:<28} {:<36} {:<12} {}",
            if s.key.is_empty() { "-" } else { &s.key },
            s.env,
            s.source,
            s.value.as_deref().unwrap_or("(unset)")
        );
    }
    Ok(Outcome::Success)
}

/// The setting's default, as clap has it.
fn default_of(arg: &clap::Arg) -> Option<String> {
    let values: Vec<String> = arg
        .get_default_values()
        .iter()
        .map(|v| v.to_string_lossy().into_owned())
        .collect();
    (!values.is_empty()).then(|| values.join(","))
}

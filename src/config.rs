//! Settings from a file (`--config annuaire.toml`, `ANNUAIRE_CONFIG`), beneath the
//! environment and the flags. The file's keys are the long flag names (`listen`,
//! `database-url`; `_` for `-` works too), each a string, number, boolean or (for a list
//! setting) an array. The layering is clap's own: a file setting becomes the setting's
//! environment variable unless the environment already has it, so a flag beats the
//! environment, the environment beats the file, and a default applies only when none of
//! them gives the setting. Each value is checked against the setting's own parser at once,
//! so that an error names the key and the file. Job definitions stay in `jobs/`.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::CommandFactory;

use crate::commands::cli::Cli;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: {reason}")]
    File { file: String, reason: String },
    #[error("{file}: {key}: {reason}")]
    Key { file: String, key: String, reason: String },
}

/// A setting that may come from the file: its flag's long name, its variable, and the
/// argument itself (its parser checks a file's value; its default is shown).
#[derive(Debug, Clone)]
pub struct Setting {
    pub key: String,
    pub env: String,
    pub secret: bool,
    pub arg: clap::Arg,
}

/// Settings whose values `config show` never prints whole.
fn is_secret(env: &str) -> bool {
    env == "DATABASE_URL" || env.starts_with("ANNUAIRE_ENTRA_") || env.ends_with("_SECRET")
}

/// `text` with what a URL may carry as credentials masked: the password (`user:***@`), an
/// HTTP URL's user name alone (`https://***@`: often a token; a database URL's is a role),
/// every query value (`?token=***`, a bare `?***`), the fragment. Everything shown of a URL goes through it: `config show`
/// (`database-url`, the webhooks), the webhooks' log lines and stored texts. `None` when
/// `text` is not a URL.
pub fn mask_url(text: &str) -> Option<String> {
    let mut url = reqwest::Url::parse(text).ok()?;
    if url.password().is_some() {
        // Fails only for a URL without a host, which has no credentials to mask.
        let _ = url.set_password(Some("***"));
    } else if !url.username().is_empty() && matches!(url.scheme(), "http" | "https") {
        let _ = url.set_username("***");
    }
    if let Some(query) = url.query() {
        let masked: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) => format!("{name}=***"),
                None if pair.is_empty() => String::new(),
                None => "***".to_owned(),
            })
            .collect();
        url.set_query(Some(&masked.join("&")));
    }
    if url.fragment().is_some() {
        url.set_fragment(Some("***"));
    }
    Some(url.to_string())
}

/// Every argument of every command, subcommands included.
fn all_arguments() -> Vec<clap::Arg> {
    let mut arguments = Vec::new();
    let mut stack = vec![Cli::command()];
    while let Some(command) = stack.pop() {
        arguments.extend(command.get_arguments().cloned());
        stack.extend(command.get_subcommands().cloned());
    }
    arguments
}

/// Every setting of every command that has an environment variable, by key (a setting
/// several commands share is declared alike in each).
pub fn settings() -> BTreeMap<String, Setting> {
    all_arguments()
        .into_iter()
        .filter_map(|arg| {
            let (long, env) = (
                arg.get_long()?.to_owned(),
                arg.get_env()?.to_string_lossy().into_owned(),
            );
            let setting = Setting {
                key: long.clone(),
                secret: is_secret(&env),
                env,
                arg,
            };
            Some((long, setting))
        })
        .collect()
}

/// The config file the command line or the environment names, if any.
pub fn file_of(args: &[OsString]) -> Option<PathBuf> {
    let mut args = args.iter().skip(1);
    while let Some(arg) = args.next() {
        let arg = arg.to_string_lossy();
        if arg == "--config" {
            return args.next().map(PathBuf::from);
        }
        if let Some(path) = arg.strip_prefix("--config=") {
            return Some(PathBuf::from(path));
        }
    }
    std::env::var_os("ANNUAIRE_CONFIG")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// Reads `file` and returns, for each of its settings, the variable to set and its value
/// (checked by the setting's parser). Names the key and the file on any error.
pub fn read(file: &Path) -> Result<Vec<(String, String)>, ConfigError> {
    let name = file.display().to_string();
    let text = std::fs::read_to_string(file).map_err(|e| ConfigError::File {
        file: name.clone(),
        reason: format!("cannot read it: {e}"),
    })?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| ConfigError::File {
        file: name.clone(),
        reason: e.to_string().trim().replace('\n', " "),
    })?;
    let known = settings();
    let mut values = Vec::new();
    for (key, value) in table {
        let bad = |reason: String| ConfigError::Key {
            file: name.clone(),
            key: key.clone(),
            reason,
        };
        let setting = known.get(&key.replace('_', "-")).ok_or_else(|| {
            bad("unknown setting (keys are the long flag names, such as listen or database-url)".to_owned())
        })?;
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(n) => n.to_string(),
            toml::Value::Float(x) => x.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Array(items) => items
                .iter()
                .map(|item| match item {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(","),
            _ => return Err(bad("a string, number, boolean or array".to_owned())),
        };
        check(setting, &text).map_err(bad)?;
        values.push((setting.env.clone(), text));
    }
    Ok(values)
}

/// Parses `value` as the setting's argument would be: a command of that one argument
/// parses it with the argument's own parser, bounds and choices.
fn check(setting: &Setting, value: &str) -> Result<(), String> {
    let (key, arg) = (&setting.key, setting.arg.clone());
    if !arg.get_action().takes_values() {
        // A switch: the environment's spelling of a boolean.
        return match value {
            "true" | "false" | "1" | "0" | "yes" | "no" | "on" | "off" => Ok(()),
            _ => Err(format!("{value:?} is not true or false")),
        };
    }
    let alone = clap::Command::new("annuaire")
        .no_binary_name(true)
        .arg(arg.required(false).global(false));
    // One `--key=value` word: a negative number stays a value rather than looking like a flag.
    alone
        .try_get_matches_from([format!("--{key}={value}")])
        .map(|_| ())
        .map_err(|e| {
            e.to_string()
                .lines()
                .next()
                .unwrap_or_default()
                .trim_start_matches("error: ")
                .to_owned()
        })
}

/// Applies the file's settings beneath the environment's: sets each variable the
/// environment does not already set. Returns the keys it set (for `config show`).
///
/// # Safety
/// Mutates the process environment: call it before any other thread starts.
#[allow(unsafe_code)] // set_var: how a file's setting joins clap's environment layer
pub unsafe fn apply(values: &[(String, String)]) -> Vec<String> {
    let mut applied = Vec::new();
    for (env, value) in values {
        if std::env::var_os(env).is_none() {
            // SAFETY: the caller runs this before any other thread exists.
            unsafe { std::env::set_var(env, value) };
            applied.push(env.clone());
        }
    }
    applied
}

#[cfg(test)]
mod tests {
    use super::mask_url;

    #[test]
    fn a_urls_credentials_are_masked_and_the_rest_kept() {
        let cases = [
            (
                "postgres://annuaire:hunter2@db.internal:5432/annuaire?password=hunter3&sslmode=require",
                "postgres://annuaire:***@db.internal:5432/annuaire?password=***&sslmode=***",
            ),
            (
                "https://hook:s3cret@receiver.example/annuaire?token=abc&x",
                "https://hook:***@receiver.example/annuaire?token=***&***",
            ),
            ("https://tok3n@receiver.example/in", "https://***@receiver.example/in"),
            (
                "postgres://annuaire@db/annuaire?password=x",
                "postgres://annuaire@db/annuaire?password=***",
            ),
            ("https://receiver.example/in#k=v", "https://receiver.example/in#***"),
            ("http://127.0.0.1:8080/hook", "http://127.0.0.1:8080/hook"),
        ];
        for (url, shown) in cases {
            assert_eq!(mask_url(url).as_deref(), Some(shown), "{url}");
        }
        assert_eq!(mask_url("not a url"), None);
    }
}

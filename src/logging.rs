//! Where log lines go and in what form: stderr, as text for people (colours only when stderr
//! is a terminal and `NO_COLOR` is unset: a file or a pipe gets no escape codes) or as one
//! JSON object per line for a collector (`--log-format json`): timestamp, level, target,
//! message, the event's fields (`run_id`, `job`, `route`, `status`, `latency_ms`…) at the top
//! level, and the fields of the spans it happened in (`request_id`).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// The log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// `RUST_LOG`, else this: bulk statements are slow by design, sqlx would warn of each.
const DEFAULT_FILTER: &str = "info,sqlx=error";

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(colours()).init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .init(),
    }
}

/// Colours for a person at a terminal who did not ask for none (https://no-color.org).
fn colours() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

//! What each command-line command does, with its output and exit status. `cli` is the
//! grammar and `main.rs` only parses it; these functions talk to the library and print
//! for people or scripts.

pub mod claims;
pub mod cli;
pub mod config;
pub mod doctor;
pub mod export;
#[cfg(feature = "gen")]
pub mod gen_sample;
pub mod history;
pub mod imports;
pub mod jobs;
pub mod keys;
pub mod output;
pub mod search;
pub mod serve;
pub mod signing_keys;

/// Exit statuses, documented in the README; scripts and schedulers branch on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success = 0,
    Failure = 1,
    /// An import held by the safety gate: nothing was published.
    Held = 3,
    /// `claims`, `history`: this identifier was never seen (with `--at`: not then).
    NotFound = 4,
    /// `claims`: known, but absent from the published extract (with `--at`: by then).
    Removed = 5,
    /// `claims`: not an RPPS, ADELI or national identifier.
    MalformedId = 6,
}

impl From<Outcome> for std::process::ExitCode {
    fn from(outcome: Outcome) -> Self {
        std::process::ExitCode::from(outcome as u8)
    }
}

/// Prints a value as pretty JSON on stdout (`output` says what a closed stdout does).
pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    crate::out!("{}", serde_json::to_string_pretty(value)?)?;
    Ok(())
}

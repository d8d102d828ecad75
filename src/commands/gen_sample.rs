//! `annuaire gen-sample`: writes a deterministic national-scale extract for benchmarks.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

use super::Outcome;
use crate::samplegen::{self, GenOptions};

pub fn run(options: &GenOptions) -> anyhow::Result<Outcome> {
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = ProgressBar::new(options.professionals);
        if let Ok(style) = ProgressStyle::with_template("generating [{bar:40}] {pos}/{len} professionals, eta {eta}") {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    });
    let last_logged = std::cell::Cell::new(0u64);
    let progress = |done: u64| match &bar {
        Some(bar) => bar.set_position(done),
        None => {
            if done >= last_logged.get() + 250_000 {
                last_logged.set(done);
                tracing::info!(professionals = done, "generating");
            }
        }
    };
    let summary = samplegen::generate(options, &progress)?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    crate::out!(
        "{}: {} professionals ({} order), {} activity lines, {} savoir-faire lines, {} diploma lines, {} MB uncompressed",
        summary.zip_path.display(),
        summary.professionals,
        options.order.as_str(),
        summary.activity_lines,
        summary.savoir_faire_lines,
        summary.diploma_lines,
        summary.uncompressed_bytes >> 20
    )?;
    Ok(Outcome::Success)
}

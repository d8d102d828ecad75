//! `gen-sample`: a deterministic generator of national-scale `PS_LibreAcces_<ts>.zip`
//! extracts in the exact published format, for benchmarks and tests. It owns the synthetic
//! population model (who exists and how they change from day to day) and its streaming
//! writer; nothing is held in memory beyond one professional at a time.

mod codes;
mod diplomas;
mod format;
mod geo;
#[cfg(test)]
mod line_tests;
mod names;
mod order;
mod population;
mod professional;
mod rng;
mod structures;
#[cfg(test)]
mod tests;

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::{Datelike, Days, TimeZone, Timelike};
use chrono_tz::Europe::Paris;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use order::LineSink;
pub use order::Order;
use population::Population;
use professional::Ctx;
use structures::Pools;

/// Version of the generated data: bumped whenever the same options give other bytes, so
/// that caches of generated extracts (the benchmarks') are regenerated. 2: issue 10's
/// national weights (more activities, savoir-faire and diplomas) and 1.5 % daily changes.
pub const DATA_VERSION: u32 = 2;

/// What to generate: `professionals` alive on day 0, drawn from `seed`, as published
/// `day` days after the base date (2026-11-25 09:00 Paris), lines in `order`.
#[derive(Clone, Debug)]
pub struct GenOptions {
    pub professionals: u64,
    pub seed: u64,
    pub day: u32,
    pub out_dir: PathBuf,
    pub order: Order,
}

/// What was written. `professionals` is the number present on `day`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenSummary {
    pub zip_path: PathBuf,
    pub professionals: u64,
    pub activity_lines: u64,
    pub savoir_faire_lines: u64,
    pub diploma_lines: u64,
    pub uncompressed_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum GenError {
    #[error("invalid gen-sample options: {0}")]
    InvalidOptions(String),
    #[error("writing {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("writing zip {path}: {source}")]
    Zip {
        path: PathBuf,
        source: zip::result::ZipError,
    },
}

/// The three entries, in the order of the real zip, with their share of the work (for progress).
#[derive(Clone, Copy)]
enum Entry {
    Activite,
    SavoirFaire,
    Diplome,
}

impl Entry {
    const ALL: [Entry; 3] = [Entry::Activite, Entry::SavoirFaire, Entry::Diplome];

    /// Distinguishes the files' shuffles, so that they are not the same permutation.
    fn number(self) -> u64 {
        self as u64
    }

    fn prefix(self) -> &'static str {
        match self {
            Entry::Activite => "PS_LibreAcces_Personne_activite_",
            Entry::SavoirFaire => "PS_LibreAcces_SavoirFaire_",
            Entry::Diplome => "PS_LibreAcces_Dipl_AutExerc_",
        }
    }

    /// Percent of the output bytes, so that progress advances evenly.
    fn weight(self) -> u64 {
        match self {
            Entry::Activite => 70,
            Entry::SavoirFaire => 5,
            Entry::Diplome => 25,
        }
    }
}

/// Extract timestamp `YYYYMMDDHHMM` of `day` (Paris local time) and the matching zip time.
pub fn extract_timestamp(day: u32) -> Result<(String, zip::DateTime), GenError> {
    let bad = || GenError::InvalidOptions(format!("day {day} is out of range"));
    let base = Paris.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).single().ok_or_else(bad)?;
    let t = base.checked_add_days(Days::new(u64::from(day))).ok_or_else(bad)?;
    let ts = t.format("%Y%m%d%H%M").to_string();
    let year = u16::try_from(t.year()).map_err(|_| bad())?;
    let zt = zip::DateTime::from_date_and_time(
        year,
        t.month() as u8,
        t.day() as u8,
        t.hour() as u8,
        t.minute() as u8,
        0,
    )
    .map_err(|_| bad())?;
    Ok((ts, zt))
}

/// Writes `PS_LibreAcces_<ts>.zip` into `opts.out_dir` (through a temporary name, renamed at
/// the end so a watcher never sees half a file). `progress` receives a count that rises to
/// the number of professionals, weighted by each entry's share of the bytes.
pub fn generate(opts: &GenOptions, progress: &dyn Fn(u64)) -> Result<GenSummary, GenError> {
    let pop = Population::new(opts.professionals, opts.seed, opts.day)?;
    let ctx = Ctx {
        seed: opts.seed,
        pools: Pools::new(opts.professionals),
        pop,
    };
    let (ts, mtime) = extract_timestamp(opts.day)?;
    fs::create_dir_all(&opts.out_dir).map_err(|e| io_err(&opts.out_dir, e))?;
    let zip_path = opts.out_dir.join(format!("PS_LibreAcces_{ts}.zip"));
    let tmp_path = opts.out_dir.join(format!(".PS_LibreAcces_{ts}.zip.partial"));
    tracing::info!(professionals = opts.professionals, seed = opts.seed, day = opts.day, order = opts.order.as_str(), path = %zip_path.display(), "generating sample extract");
    let result = write_zip(&ctx, opts, &tmp_path, &ts, mtime, progress);
    let mut summary = match result {
        Ok(s) => s,
        Err(e) => {
            // Best effort: the partial file is useless and may be large.
            let _ = fs::remove_file(&tmp_path);
            return Err(e);
        }
    };
    fs::rename(&tmp_path, &zip_path).map_err(|e| io_err(&zip_path, e))?;
    summary.zip_path = zip_path;
    tracing::info!(?summary, "sample extract written");
    Ok(summary)
}

fn io_err(path: &Path, source: io::Error) -> GenError {
    GenError::Io {
        path: path.to_owned(),
        source,
    }
}

fn write_zip(
    ctx: &Ctx,
    opts: &GenOptions,
    path: &Path,
    ts: &str,
    mtime: zip::DateTime,
    progress: &dyn Fn(u64),
) -> Result<GenSummary, GenError> {
    let zip_err = |source| GenError::Zip {
        path: path.to_owned(),
        source,
    };
    let file = File::create(path).map_err(|e| io_err(path, e))?;
    let mut zip = ZipWriter::new(BufWriter::with_capacity(1 << 20, file));
    // ~720 bytes of text per professional in all; past 4 GiB an entry needs ZIP64.
    let large = ctx.pop.end().saturating_mul(900) > 3_500_000_000;
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .compression_level(Some(1))
        .last_modified_time(mtime)
        .system(zip::System::Unix)
        .unix_permissions(0o644)
        .large_file(large);
    let mut summary = GenSummary {
        zip_path: PathBuf::new(),
        professionals: 0,
        activity_lines: 0,
        savoir_faire_lines: 0,
        diploma_lines: 0,
        uncompressed_bytes: 0,
    };
    let mut done_weighted = 0u64;
    let mut buf = String::with_capacity(8 << 10);
    for entry in Entry::ALL {
        zip.start_file(format!("{}{ts}.txt", entry.prefix()), options)
            .map_err(zip_err)?;
        let io = |e| io_err(path, e);
        buf.clear();
        format::header(
            match entry {
                Entry::Activite => &format::ACTIVITE_HEADER,
                Entry::SavoirFaire => &format::SAVOIR_FAIRE_HEADER,
                Entry::Diplome => &format::DIPLOME_HEADER,
            },
            &mut buf,
        );
        summary.uncompressed_bytes += buf.len() as u64;
        let w = BufWriter::with_capacity(256 << 10, &mut zip);
        let mut w = LineSink::new(opts.order, w, &buf, &opts.out_dir).map_err(io)?;
        buf.clear();
        let mut alive = 0u64;
        for i in 0..ctx.pop.end() {
            if !ctx.pop.alive(i) {
                continue;
            }
            let p = professional::build(ctx, i);
            let lines = match entry {
                Entry::Activite => format::activite_lines(ctx.seed, &p, &mut buf),
                Entry::SavoirFaire => format::savoir_faire_lines(&p, &mut buf),
                Entry::Diplome => format::diplome_lines(&p, &mut buf),
            };
            match entry {
                Entry::Activite => summary.activity_lines += lines,
                Entry::SavoirFaire => summary.savoir_faire_lines += lines,
                Entry::Diplome => summary.diploma_lines += lines,
            }
            alive += 1;
            if buf.len() >= 64 << 10 {
                w.write_lines(&buf).map_err(io)?;
                summary.uncompressed_bytes += buf.len() as u64;
                buf.clear();
            }
            if alive.is_multiple_of(16_384) {
                progress((done_weighted + alive * entry.weight()) / 100);
            }
        }
        w.write_lines(&buf).map_err(io)?;
        summary.uncompressed_bytes += buf.len() as u64;
        buf.clear();
        let mut w = w.finish(ctx.seed, entry.number()).map_err(io)?;
        w.flush().map_err(io)?;
        drop(w);
        summary.professionals = alive;
        done_weighted += alive * entry.weight();
        progress(done_weighted / 100);
    }
    let mut inner = zip.finish().map_err(zip_err)?;
    inner.flush().map_err(|e| io_err(path, e))?;
    let file = inner.into_inner().map_err(|e| io_err(path, e.into_error()))?;
    file.sync_all().map_err(|e| io_err(path, e))?;
    Ok(summary)
}

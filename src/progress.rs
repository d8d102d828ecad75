//! Progress of long work (reading an 800 MB extract takes a while): a bar when a person
//! watches a terminal, a log line every few seconds otherwise (cron, CI, log collectors).

use std::io::{IsTerminal, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A shared byte counter that readers bump and a reporter watches.
#[derive(Clone, Default)]
pub struct Progress {
    done: Arc<AtomicU64>,
}

impl Progress {
    pub fn add(&self, bytes: u64) {
        self.done.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// Wraps a reader so that what it reads counts.
    pub fn counting<'r>(&self, inner: &'r mut (dyn Read + Send)) -> CountingReader<'r> {
        CountingReader {
            inner,
            progress: self.clone(),
        }
    }

    /// Reports until the returned guard is dropped.
    pub fn report(&self, phase: &'static str, total: u64) -> ReportGuard {
        let progress = self.clone();
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        // A bar only for a person at a terminal (stdout a terminal, as the CLI promises);
        // it is drawn on stderr so that stdout stays clean for `--json`.
        let interactive = std::io::stdout().is_terminal() && std::io::stderr().is_terminal();
        let bar = interactive.then(|| {
            let bar = ProgressBar::new(total);
            if let Ok(style) =
                ProgressStyle::with_template("{msg:12} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
            {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(phase);
            bar
        });
        let watched = bar.clone();
        let task = tokio::spawn(async move {
            let period = if interactive {
                Duration::from_millis(200)
            } else {
                Duration::from_secs(5)
            };
            let mut ticker = tokio::time::interval(period);
            ticker.tick().await;
            loop {
                tokio::select! {
                    _ = &mut stop_rx => break,
                    _ = ticker.tick() => {
                        let done = progress.done();
                        match &watched {
                            Some(bar) => bar.set_position(done),
                            None => tracing::info!(phase, done_mb = done >> 20, total_mb = total >> 20, "progress"),
                        }
                    }
                }
            }
        });
        ReportGuard {
            stop: Some(stop_tx),
            bar,
            _task: task,
        }
    }
}

pub struct ReportGuard {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    bar: Option<ProgressBar>,
    _task: tokio::task::JoinHandle<()>,
}

impl Drop for ReportGuard {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

pub struct CountingReader<'r> {
    inner: &'r mut (dyn Read + Send),
    progress: Progress,
}

impl Read for CountingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.add(n as u64);
        Ok(n)
    }
}

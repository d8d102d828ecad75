//! The commands' standard output. A reader that goes away early (`annuaire … --json | head`)
//! is not a failure of the command: what is left to print has nowhere to go, so it is
//! dropped quietly and the command ends with its own exit status (an import that ran is
//! recorded and reported as it ended). `println!` panics there instead, with a backtrace
//! hint and exit status 101.

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once stdout's reader is gone: later writes are skipped.
static CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes `args` to stdout; a closed pipe is not an error (see the module), any other
/// write error is.
pub fn write(args: fmt::Arguments<'_>) -> io::Result<()> {
    if CLOSED.load(Ordering::Relaxed) {
        return Ok(());
    }
    let mut out = io::stdout().lock();
    quiet_if_closed(out.write_fmt(args).and_then(|()| out.flush()))
}

/// Writes bytes as they are (a stored document) to stdout, as `write` does.
pub fn write_bytes(bytes: &[u8]) -> io::Result<()> {
    if CLOSED.load(Ordering::Relaxed) {
        return Ok(());
    }
    let mut out = io::stdout().lock();
    quiet_if_closed(out.write_all(bytes).and_then(|()| out.flush()))
}

fn quiet_if_closed(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
            CLOSED.store(true, Ordering::Relaxed);
            Ok(())
        }
        other => other,
    }
}

/// `println!` through `write`: evaluates to an `io::Result<()>`.
#[macro_export]
macro_rules! out {
    () => {
        $crate::commands::output::write(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::commands::output::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}

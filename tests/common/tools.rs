//! One policy for the outside programs a test needs (Chromium, Node, the validators of
//! `deploy/`): CI (`CI=true`) must provide them, so there a missing one fails the test;
//! elsewhere the test skips that part and says how to install it, so a bare checkout still
//! runs the rest of the suite.

use std::io::Write;
use std::path::Path;

/// Whether `tool` (a name looked up on `PATH`, or a path) is there. When it is not: under
/// `CI=true` this panics with `install`; elsewhere it prints
/// "skipped: <tool> not found; <install>" and returns false, and the caller skips.
pub fn require(tool: &str, install: &str) -> bool {
    if found(tool) {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{tool} not found, which CI must provide: {install}");
    }
    // Straight to stderr: the test harness would capture `eprintln!` of a passing test.
    let _ = writeln!(std::io::stderr(), "skipped: {tool} not found; {install}");
    false
}

fn found(tool: &str) -> bool {
    if tool.contains('/') {
        return Path::new(tool).is_file();
    }
    std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
}

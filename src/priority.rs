//! CPU priority of batch work. An import shares its machine with servers answering IdPs
//! within a millisecond: it runs niced, so that the scheduler lets a waiting request run
//! first. On Linux a nice value is per thread and inherited by the threads it creates: set
//! it before any thread starts and the whole import (reader, builders, runtime) follows. In
//! a server, batch work therefore gets its own OS thread ([`run_niced`]), never a tokio
//! worker, whose niceness would slow the claims path down.

use std::future::Future;

#[derive(Debug, thiserror::Error)]
pub enum NicedError {
    #[error("cannot start the low-priority thread: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("cannot start the low-priority thread's runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("the low-priority thread stopped before its work ended (a panic?)")]
    Lost,
}

/// Lowers the calling thread's (and its future threads') priority by `nice` (0 to 19).
pub fn lower(nice: i32) {
    if nice <= 0 {
        return;
    }
    // SAFETY: setpriority takes plain integers and changes only this thread's scheduling.
    #[allow(unsafe_code)]
    let result = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice.min(19)) };
    if result != 0 {
        tracing::warn!(nice, error = %std::io::Error::last_os_error(), "cannot lower the import's CPU priority");
    }
}

/// The calling thread's nice value.
pub fn current() -> i32 {
    // SAFETY: getpriority reads this thread's scheduling value; -1 is also a valid value,
    // which is fine here (no errno check needed for PRIO_PROCESS of the caller).
    #[allow(unsafe_code)]
    unsafe {
        libc::getpriority(libc::PRIO_PROCESS, 0)
    }
}

/// Runs the future made by `make` on a new OS thread niced by `nice`, with its own
/// current-thread runtime, so that everything it spawns (blocking tasks, builder threads)
/// inherits the low priority. The result comes back over a channel. Dropping the returned
/// future does not stop the work: pass it a cancellation token for that.
///
/// I/O resources are tied to the runtime that created them: the future should open its own
/// (a database pool, say) rather than create connections that outlive the thread.
pub fn run_niced<F, Fut, T>(nice: i32, name: &str, make: F) -> impl Future<Output = Result<T, NicedError>>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
    T: Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new().name(name.to_owned()).spawn(move || {
        lower(nice);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
        let result = match runtime {
            Ok(runtime) => Ok(runtime.block_on(make())),
            Err(e) => Err(NicedError::Runtime(e)),
        };
        // The caller may have stopped waiting; the work is done either way.
        let _ = tx.send(result);
    });
    async move {
        spawned.map_err(NicedError::Spawn)?;
        rx.await.map_err(|_| NicedError::Lost)?
    }
}

/// Runs `work` on a new OS thread niced by `nice` and returns its result. For a server's
/// CPU-heavy housekeeping between requests (copying or freeing the map of a claims
/// snapshot, tens of milliseconds at national scale): on a tokio worker it would hold up
/// every request queued behind it; here the scheduler lets the workers run first.
pub fn on_niced_thread<F, T>(nice: i32, name: &str, work: F) -> impl Future<Output = Result<T, NicedError>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new().name(name.to_owned()).spawn(move || {
        lower(nice);
        let _ = tx.send(work());
    });
    async move {
        spawned.map_err(NicedError::Spawn)?;
        rx.await.map_err(|_| NicedError::Lost)
    }
}

/// Lowers the CPU priority of another process by `nice` (0 to 19): a local Postgres
/// backend working for an import, whose COPY, sorts and index updates otherwise compete
/// with the claims path at the server's own priority. Allowed for processes of the same
/// user, or with `CAP_SYS_NICE` (root running an embedded cluster as its server user); a
/// remote database's backends are out of reach, and the error says so.
pub fn lower_process(pid: u32, nice: i32) -> std::io::Result<()> {
    if nice <= 0 {
        return Ok(());
    }
    let pid = libc::id_t::try_from(pid).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: setpriority takes plain integers; it changes only the scheduling of `pid`.
    #[allow(unsafe_code)]
    let result = unsafe { libc::setpriority(libc::PRIO_PROCESS, pid, nice.min(19)) };
    if result == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_runs_niced_on_its_own_thread_and_threads_it_spawns_inherit_it() {
        let before = current();
        let (own, inherited) = run_niced(7, "test-niced", || async {
            let spawned = tokio::task::spawn_blocking(current).await.unwrap_or(-100);
            (current(), spawned)
        })
        .await
        .expect("ran");
        // setpriority sets an absolute value; an unprivileged runner already above 7 stays.
        let expected = before.max(7);
        assert_eq!(own, expected);
        assert_eq!(inherited, expected, "a blocking task of the niced runtime");
        assert_eq!(current(), before, "the caller's thread keeps its priority");
    }

    #[tokio::test]
    async fn housekeeping_runs_niced_and_returns_its_result() {
        let before = current();
        let (nice, sum) = on_niced_thread(9, "test-housekeeping", || (current(), (1..=10).sum::<i32>()))
            .await
            .expect("ran");
        assert_eq!((nice, sum), (before.max(9), 55));
        assert_eq!(current(), before, "the caller's thread keeps its priority");
        let lost = on_niced_thread(9, "test-housekeeping-panic", || -> i32 { panic!("boom") }).await;
        assert!(matches!(lost, Err(NicedError::Lost)), "{lost:?}");
    }

    #[test]
    fn another_process_can_be_niced() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep starts");
        let pid = child.id();
        let lowered = lower_process(pid, 12);
        // SAFETY: getpriority reads the scheduling value of our own child.
        #[allow(unsafe_code)]
        let nice = unsafe { libc::getpriority(libc::PRIO_PROCESS, pid as libc::id_t) };
        let _ = child.kill();
        let _ = child.wait();
        lowered.expect("a process of the same user can be niced");
        assert_eq!(nice, 12.max(current()));
    }

    #[tokio::test]
    async fn a_panic_in_the_work_is_an_error_not_a_hang() {
        let result = run_niced(1, "test-panic", || async { panic!("boom") }).await;
        assert!(matches!(result, Err::<(), _>(NicedError::Lost)), "{result:?}");
    }
}

//! CPU priority of batch work. An import shares its machine with servers answering IdPs
//! within a millisecond: it runs niced, so that the scheduler lets a waiting request run
//! first. On Linux a nice value is per thread and inherited: set it before any thread
//! starts and the whole import (reader, builders, runtime) follows.

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

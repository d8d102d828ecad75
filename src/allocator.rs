//! The allocator's settings. `annuaire` (main.rs) and the benchmarks that run its work in
//! their own process declare mimalloc as their global allocator: the import and the search
//! build allocate and free many small values on several threads, and glibc's malloc was a
//! tenth of their CPU. The library declares none, so that a test may count allocations
//! with its own.

/// Freed memory goes back to the system at once rather than 10 ms later (100 ms for its
/// arenas): an import frees hundreds of MB in bursts, and with the delay its peak resident
/// memory passed its 512 MiB budget (530 MiB against 430 MiB, day 0 of benches/import).
/// Called first thing, before any other thread starts.
#[allow(unsafe_code)] // a C option setter
pub fn release_freed_memory_at_once() {
    /// `mi_option_purge_delay` in mimalloc 3's `mi_option_e` (between `eager_commit_delay`,
    /// 14, and `use_numa_nodes`, 16, which libmimalloc-sys names): it does not name it.
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: sets a plain integer option of the allocator; no pointer is passed.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, 0) };
}

//! Allocator tuning for a small, long-running agent (glibc only).
//!
//! Measured with `cargo xtask bench containers` (500 containers, a ~3 MB exposition): glibc's
//! defaults keep one arena per blocking thread and raise the mmap threshold after the first
//! large free, so multi-megabyte scrape buffers stay resident between scrapes. Capping the
//! arenas and fixing the threshold hands large buffers back to the kernel when they are freed.

/// Buffers at least this large are mapped on their own and unmapped when freed.
const MMAP_THRESHOLD: i32 = 512 * 1024;
/// At most this many malloc arenas, however many threads the runtime starts.
const ARENA_MAX: i32 = 2;

/// Applies the tuning; call once at start, before other threads exist.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; it is called before any other thread
    // starts allocating.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, ARENA_MAX);
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}

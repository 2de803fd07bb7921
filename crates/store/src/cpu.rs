//! The thread CPU clock (`CLOCK_THREAD_CPUTIME_ID`, ~80 ns a read): what metering bills as CPU time, read
//! around a guest's polls by the wasm host and around host work done for an invocation on a thread of its
//! own (a SQL statement on a blocking thread) here.

use std::time::Duration;

/// CPU time the calling thread has used.
pub fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec and the clock id a constant the platform defines; a failure
    // (none is documented for this clock on Linux) leaves it zero, which only under-counts.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Runs `f`, returning what it returned and the thread CPU time it used.
pub fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = thread_cpu_time();
    let out = f();
    (out, thread_cpu_time().saturating_sub(start))
}

//! CPU-heavy steps (the rewrite, wrapping) without stalling the sessions
//! that share a worker thread.

/// Runs CPU-heavy work without stalling the other sessions that share this
/// worker thread: on the multi-threaded runtime `block_in_place` hands them
/// to another worker first. (A current-thread runtime, as in the fuzz
/// harness, has no other worker: the work runs inline there.)
pub fn cpu_heavy<T>(work: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|handle| handle.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    /// With one worker thread, a task spawned while heavy work runs through
    /// `cpu_heavy` still runs: the worker is not held by the heavy work.
    #[test]
    fn heavy_work_leaves_the_worker_to_other_sessions() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let started = Arc::new(AtomicBool::new(false));
        let other_ran = Arc::new(AtomicBool::new(false));
        let (start_flag, other_flag) = (Arc::clone(&started), Arc::clone(&other_ran));
        let heavy = runtime.spawn(async move {
            cpu_heavy(|| {
                start_flag.store(true, Ordering::SeqCst);
                // Bounded: without the hand-over this returns false.
                let deadline = Instant::now() + Duration::from_secs(10);
                while !other_flag.load(Ordering::SeqCst) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(5));
                }
                other_flag.load(Ordering::SeqCst)
            })
        });
        while !started.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
        let flag = Arc::clone(&other_ran);
        runtime.spawn(async move { flag.store(true, Ordering::SeqCst) });
        let saw_other = runtime.block_on(heavy).unwrap();
        assert!(saw_other, "the other task waited for the heavy work");
    }

    #[test]
    fn heavy_work_runs_inline_without_a_multi_thread_runtime() {
        assert_eq!(cpu_heavy(|| 7), 7);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert_eq!(runtime.block_on(async { cpu_heavy(|| 8) }), 8);
    }
}

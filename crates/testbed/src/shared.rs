//! One testbed per test process, shared by the tests in it: starting a
//! control plane takes seconds, so test binaries start it once and tear it
//! down when the process exits.

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use crate::{Fleet, Options, Testbed};

static SHARED: OnceLock<Testbed> = OnceLock::new();

/// The process's shared testbed, started from `fleet` by the first caller.
/// Later callers get the same testbed whatever fleet they pass.
pub fn shared(fleet: impl FnOnce() -> Fleet) -> &'static Testbed {
    SHARED.get_or_init(|| {
        let fleet = fleet();
        // Tests run inside their own runtimes, which end with each test;
        // start on a thread with a runtime of its own.
        let bed = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
            runtime.block_on(Testbed::start(&fleet, Options::default()))
        })
        .join()
        .expect("the testbed start thread panicked")
        .unwrap_or_else(|e| panic!("the shared testbed did not start: {e}"));
        // SAFETY: registers a plain `extern "C" fn` that runs at process exit.
        unsafe { libc::atexit(teardown_shared) };
        bed
    })
}

extern "C" fn teardown_shared() {
    if let Some(bed) = SHARED.get() {
        bed.teardown();
    }
}

/// Polls `probe` every 200 ms until it returns `Some`, panicking with
/// `what` after `seconds`.
pub async fn eventually<T, F, Fut>(what: &str, seconds: u64, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: not within {seconds}s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::fmt::Debug;
use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use gantry_testbed::{Fleet, Options, Testbed};
use kube::Resource;
use kube::api::Api;
use kube::runtime::wait::{Condition, await_condition};
use serde::de::DeserializeOwned;

static SHARED: OnceLock<Testbed> = OnceLock::new();

/// One testbed with two small clusters, `a` and `b`, started by the first test that asks
/// and torn down when the test process exits.
pub fn shared() -> &'static Testbed {
    SHARED.get_or_init(|| {
        // Tests run inside their own runtimes; start on a thread with one of its own.
        let bed = std::thread::spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(Testbed::start(&Fleet::small("a").and(Fleet::small("b")), Options::default()))
        })
        .join()
        .expect("the start thread panicked")
        .unwrap_or_else(|e| panic!("the shared testbed did not start: {e}"));
        // SAFETY: registers a plain `extern "C" fn` to run at exit.
        unsafe { libc::atexit(teardown_shared) };
        bed
    })
}

extern "C" fn teardown_shared() {
    if let Some(bed) = SHARED.get() {
        bed.teardown();
    }
}

/// Waits for `cond` on the named object, failing the test after `seconds`.
pub async fn wait_for<K>(api: Api<K>, name: &str, seconds: u64, cond: impl Condition<K>) -> K
where
    K: Clone + Debug + Send + DeserializeOwned + Resource + 'static,
{
    match tokio::time::timeout(Duration::from_secs(seconds), await_condition(api, name, cond)).await {
        Ok(Ok(Some(obj))) => obj,
        Ok(Ok(None)) => panic!("{name} is gone"),
        Ok(Err(e)) => panic!("watching {name}: {e}"),
        Err(_) => panic!("{name}: condition not met within {seconds}s"),
    }
}

/// Polls `probe` every 250 ms until it returns `Some`, failing the test after `seconds`.
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
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Whether a process with this id exists (a zombie counts as gone).
pub fn process_exists(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'),
        Err(_) => false,
    }
}

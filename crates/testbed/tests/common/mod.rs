//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::fmt::Debug;
use std::time::Duration;

use gantry_testbed::{Fleet, Testbed};
use kube::Resource;
use kube::api::Api;
use kube::runtime::wait::{Condition, await_condition};
use serde::de::DeserializeOwned;

pub use gantry_testbed::shared::eventually;

/// One testbed with two small clusters, `a` and `b`, started by the first test that asks
/// and torn down when the test process exits.
pub fn shared() -> &'static Testbed {
    gantry_testbed::shared::shared(|| Fleet::small("a").and(Fleet::small("b")))
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

/// Whether a process with this id exists (a zombie counts as gone).
pub fn process_exists(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'),
        Err(_) => false,
    }
}

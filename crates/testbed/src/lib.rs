//! Real local Kubernetes control planes with a KWOK-simulated GPU fleet, for Gantry's
//! tests, benchmarks and demo.
//!
//! ```no_run
//! # async fn demo() -> gantry_testbed::Result<()> {
//! use gantry_testbed::{Fleet, Options, Testbed};
//! let bed = Testbed::start(&Fleet::small("a"), Options::default()).await?;
//! let client = bed.cluster("a").unwrap().client().await?;
//! # let _ = client; Ok(()) }
//! ```

pub mod apply;
mod binaries;
mod cluster;
pub mod dcgm;
mod error;
pub mod fleet;
pub mod identity;
pub mod karpenter;
pub mod kwok;
mod pki;
mod process;
pub mod progress;
pub mod prometheus;
pub mod report;
pub mod shared;
mod testbed;
pub mod training;

pub use binaries::{
    Binaries, HYDRA_VERSION, Hydra, K8S_VERSION, KARPENTER_VERSION, KWOK_VERSION, Karpenter, TRAINER_VERSION,
    TRAINING_OPERATOR_VERSION, TrainerCrds, TrainingOperator, build_seconds_file, cache_root, hydra_dir, karpenter_dir,
    kubectl_build_seconds_file, trainer_dir, training_operator_dir, version_dir,
};
pub use cluster::{AuditedRequest, ClusterHandle, Component};
pub use dcgm::{DcgmExporter, GpuSample, History, MigSlice};
pub use error::{Error, Result};
pub use fleet::Fleet;
pub use identity::{IdentityProvider, IdentityUser};
pub use prometheus::Prometheus;
pub use testbed::{Options, Testbed};

//! Gantry's one Kubernetes adapter. It watches every registered cluster into
//! compact caches ([`hub`]), answers read queries from them ([`queries`]),
//! and performs the mutations Gantry offers ([`actions`]) the way kubectl
//! would, with optimistic concurrency.

pub mod actions;
pub mod autoscaling;
pub mod hub;
pub mod kubeconfig;
pub mod ledger;
pub mod queries;
pub mod summary;
pub mod training;

pub use actions::{ActionError, ActionResult};
pub use hub::{Change, ClusterCache, ClusterStatus, Hub};
pub use queries::Viewer;

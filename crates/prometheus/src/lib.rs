//! Gantry's one adapter to Prometheus: how busy each pod's GPUs were, so that hourly usage
//! can tell GPU time used from GPU time wasted.
//!
//! A cluster may name a Prometheus (and a bearer token for it) that scrapes NVIDIA's
//! dcgm-exporter. [`Client::utilisation`] asks it for each pod's mean over a span; the caller
//! records the answer with [`record`] into a [`gantry_domain::usage::Utilisation`], which
//! joins it to the pods' GPU allocations.
//!
//! **The metrics.** dcgm-exporter publishes, per GPU (or per MIG slice), with the pod that
//! holds it in `namespace`/`pod`/`container` labels:
//! - `DCGM_FI_PROF_GR_ENGINE_ACTIVE`, the ratio (0..1) of time the graphics/compute engine
//!   was busy, from DCGM's profiling module. It is measured per MIG instance and is the
//!   utilisation NVIDIA recommends, so Gantry prefers it (× 100).
//! - `DCGM_FI_DEV_GPU_UTIL`, the percent (0..100) of time any kernel ran, from NVML (the
//!   number `nvidia-smi` shows). It is a device-level reading: DCGM leaves it blank for a MIG
//!   slice, and the exporter then leaves the series out. Gantry uses it for a pod without the
//!   profiling metric (GPUs or exporters without the profiling module).
//!
//! Both count time in which *something* ran, not how much of the GPU it used (that would be
//! `SM_ACTIVE`/`SM_OCCUPANCY`): a pod at 100 % may still use a sliver of each SM, so the waste
//! Gantry reports is a lower bound. A pod with several GPUs or slices gets the mean over them.
//!
//! **Label variants.** With a static or honouring scrape, the pod is in `namespace` and
//! `pod`. Behind a Prometheus Operator ServiceMonitor without `honorLabels` (the chart's
//! default), the scrape target's own `namespace`/`pod` (the exporter's) win, and the
//! exporter's are renamed `exported_namespace`/`exported_pod`; a GPU nobody holds then carries
//! the exporter pod's labels. [`per_pod`](utilisation::per_pod) says how each case is read.
//! `Hostname` is not relied on (newer exporters write `hostname`).
//!
//! **Failures** are [`PrometheusError`]s that read as one line a person can act on; none
//! shows the bearer token, which is also hidden from `Debug`.

mod client;
mod error;
pub mod utilisation;

pub use client::{Client, PROBE_TIMEOUT, QUERY_TIMEOUT};
pub use error::{PrometheusError, Result};
pub use utilisation::{PodUtilisation, record};

//! Gantry's server: the axum application behind the `gantry` binary.
//! Exposed as a library so integration tests can build the same router.

pub mod assets;
pub mod cli;
pub mod demo;
pub mod metrics;
pub mod openapi;
pub mod page_bundles;
pub mod rest;
pub mod security;
pub mod serve;
pub mod sso;
pub mod streams;
pub mod web;

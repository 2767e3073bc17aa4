//! Gantry's pure core. Everything here is decided without IO, is unit-tested
//! exhaustively, and compiles for both the server and wasm32.

pub mod allocation;
pub mod changes;
pub mod chart;
pub mod cost;
pub mod error;
pub mod fit;
pub mod gpu;
pub mod health;
pub mod lenient;
pub mod manifest;
pub mod policy;
pub mod quantity;
pub mod records;
pub mod rollout;
pub mod series;
pub mod sso;
pub mod throttle;
pub mod usage;
pub mod validate;
pub mod view;

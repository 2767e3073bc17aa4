//! Gantry's pure core. Everything here is decided without IO, is unit-tested
//! exhaustively, and compiles for both the server and wasm32.

pub mod cost;
pub mod fit;
pub mod gpu;
pub mod lenient;
pub mod manifest;
pub mod policy;
pub mod quantity;
pub mod records;
pub mod rollout;
pub mod throttle;
pub mod validate;
pub mod view;

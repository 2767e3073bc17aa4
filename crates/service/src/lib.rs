//! Gantry's operations layer. Every server function and REST handler calls
//! into here; each operation authenticates (its caller is a [`Caller`]),
//! authorises through `gantry_domain::policy`, validates its input, acts
//! through the store or the cluster adapter, and writes the audit log.

pub mod auth;
pub mod background;
pub mod budgets;
pub mod error;
pub mod ledger;
pub mod ops;
pub mod passwords;
pub mod secrets;
pub mod sso;
pub mod state;

pub use auth::{ClientAddress, Credentials, SESSION_CSRF, SESSION_LOGIN_AT};
pub use error::{ErrorKind, Result, ServiceError, WireError};
pub use ops::accounts::{CreatedToken, TokenRequest};
pub use ops::audit_log::to_csv;
pub use ops::fleet::{MAX_KUBECONFIG_BYTES, RegisteredCluster};
pub use ops::workloads::{
    AutoscaleRequest, DeleteRequest, PromoteOutcome, RollbackOutcome, RollbackRequest, ScaleRequest,
};
pub use secrets::{KeySource, Sealer};
pub use sso::{Callback as SsoCallback, Sso, SsoConfig};
pub use state::{AppState, Audit, Caller, ServiceConfig, Via};

pub mod accounts;
pub mod audit_log;
pub mod costs;
pub mod fleet;
pub mod workloads;

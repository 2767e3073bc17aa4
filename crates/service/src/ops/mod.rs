pub mod accounts;
pub mod audit_log;
pub mod fleet;
pub mod workloads;

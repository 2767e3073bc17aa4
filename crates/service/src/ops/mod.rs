pub mod accounts;
pub mod audit_log;
pub mod costs;
pub mod fleet;
pub mod preparation;
pub mod series;
pub mod usage;
pub mod workloads;

pub mod chart;
pub mod common;
pub mod layout;
pub mod preparation;
pub mod table;

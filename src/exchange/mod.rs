//! The exchange with department back-end systems: signed push delivery, the pull inbox, and
//! the published signing keys.

pub mod signing;

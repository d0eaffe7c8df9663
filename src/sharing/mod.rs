//! Shared data (数据共享): the resource catalogue's providers, prefill with consent, the
//! base-library import, and the audit trail of who read whose data.
//!
//! - [`provider`]: where a resource's values come from (the base library, or a
//!   department's data API through the exchange with a timeout, a circuit breaker and a
//!   cache).
//! - [`prefill`]: what a service's form may be filled from and why (the plan), the
//!   applicant's consent, the values with their sources, and the re-check on submit.
//! - [`audit`]: every read of personal data, and what a citizen sees of it.
//! - [`import`]: `onewindow import`, CSV or JSON lines into the base library.
//! - [`seal`]: personal data at rest, encrypted and indexed blindly.
//! - [`grants`]: sharing requests for conditional resources and the grants enforced on
//!   every prefill and department data read.

pub mod audit;
pub mod grants;
pub mod import;
pub mod prefill;
pub mod provider;
pub mod seal;

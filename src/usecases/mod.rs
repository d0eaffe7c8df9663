//! Use cases: what the gateway does for someone, whichever way they asked (the JSON API,
//! a server-rendered page, a department's system, the background worker).
//!
//! Each file is one capability a newcomer would look for by name:
//!
//! - [`lodge`]: an application becomes a case (validate, decide, write in one transaction);
//! - [`apply`]: a logged-in applicant applies online (who may, as whom), then [`lodge`];
//! - [`intake`]: a clerk registers a walk-in applicant at the window, then [`lodge`];
//! - [`prefill`]: shared data around a form: the consent, the prefill itself, and the
//!   re-check of prefilled values and 免提交 materials when the form comes back;
//! - [`step`]: one step of a case's state machine (deadlines, joint parts, outbox, notices);
//! - [`rate`]: the applicant's 好差评 of a concluded case;
//! - [`deliver`]: one attempt to push one event to a department;
//! - [`dates`]: the holiday calendar as a gateway uses it (imported years, provisional
//!   due dates counted again, the operator's warning) and retention.
//!
//! Use cases take the shared [`AppState`](crate::state::AppState) and a typed
//! [`Actor`]; they answer typed results (`Lodged`, `Stepped` …) or one [`Error`]. None of
//! them knows HTTP: the handlers in `crate::http` turn results into responses and errors
//! into problem documents, and the same use case serves a page and an API alike.

pub mod actor;
pub mod apply;
pub mod catalogue_mgmt;
pub mod dates;
pub mod deliver;
mod effects;
pub mod error;
pub mod idempotency;
pub mod intake;
pub mod lodge;
pub mod materials;
pub mod prefill;
pub mod rate;
pub mod step;

#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;

pub use actor::Actor;
pub use effects::event_type;
pub use error::{Error, Text};
pub use idempotency::IdemKey;
pub use lodge::Lodged;
pub use materials::MaterialInput;
pub use step::Stepped;

use chrono::{NaiveDate, Utc};

/// What a use case answers.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Today in the city's time zone (China Standard Time, UTC+8), which decides working days,
/// the date in a case number and the validity of a licence.
pub fn today() -> NaiveDate {
    (Utc::now() + chrono::Duration::hours(8)).date_naive()
}

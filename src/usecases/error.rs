//! The one error type of the use cases.
//!
//! It says *what* went wrong in the gateway's own terms (not found, not allowed now, a
//! conflict with the current state, invalid fields …) with the message in both languages;
//! the HTTP layer decides the status code and renders the problem document
//! (`crate::http::error`, its `usecase` part), and a page can show the same messages at its fields.

use crate::domain::case::{Action, TransitionError};
use crate::domain::form::FieldIssue;
use crate::store::StoreError;

/// A text in Chinese and English. Use cases speak both languages because they do not
/// know who reads the answer; the caller's language is picked at the edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    /// Chinese.
    pub zh: String,
    /// English.
    pub en: String,
}

impl Text {
    /// A text in both languages.
    pub fn new(zh: impl Into<String>, en: impl Into<String>) -> Text {
        Text {
            zh: zh.into(),
            en: en.into(),
        }
    }
}

/// Why a use case did not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The thing named does not exist *for this caller*: someone else's case is not found
    /// either, so a refusal never confirms that a case number exists.
    #[error("not found: {}", .0.en)]
    NotFound(Text),
    /// The input has mistakes; every one is listed, each at its field (`materials[1]`,
    /// `applicant.id_number`, `note` …), so a form can show them all at once.
    #[error("invalid input ({} issue(s))", .0.len())]
    Invalid(Vec<FieldIssue>),
    /// The request is malformed in a way no single field explains.
    #[error("malformed request: {}", .0.en)]
    Malformed(Text),
    /// The caller may not do this. `allowed` lists the steps they may take on the case
    /// now (empty when the refusal is not about a step, or when there are none).
    #[error("not allowed: {}", .message.en)]
    NotAllowed {
        /// Why not.
        message: Text,
        /// What the caller may do instead, now.
        allowed: Vec<Action>,
    },
    /// The request is well-formed, but the current state forbids it (a step the case's
    /// status does not take, a second rating …). `allowed` as for [`Error::NotAllowed`].
    #[error("conflict: {}", .message.en)]
    Conflict {
        /// Why not.
        message: Text,
        /// What the caller may do instead, now.
        allowed: Vec<Action>,
    },
    /// The case changed under every retry: someone else is working on it at the same
    /// moment. Reloading and trying again is the remedy.
    #[error("the case was changed concurrently on every attempt")]
    Stale,
    /// The caller's identity no longer holds (their account is gone): log in again.
    #[error("unauthenticated: {}", .0.en)]
    Unauthenticated(Text),
    /// The `Idempotency-Key` was used before for a different request. (A repeat of the
    /// *same* request is not an error: it answers the first result again.)
    #[error("the idempotency key was used for a different request")]
    IdempotencyMismatch,
    /// The store failed; nothing was changed.
    #[error(transparent)]
    Storage(#[from] StoreError),
    /// A broken invariant or an unexpected failure (a case naming an unknown service …).
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl Error {
    /// A refusal with no alternative steps to offer.
    pub fn not_allowed(zh: impl Into<String>, en: impl Into<String>) -> Error {
        Error::NotAllowed {
            message: Text::new(zh, en),
            allowed: Vec::new(),
        }
    }

    /// A conflict with the current state, with no alternative steps to offer.
    pub fn conflict(zh: impl Into<String>, en: impl Into<String>) -> Error {
        Error::Conflict {
            message: Text::new(zh, en),
            allowed: Vec::new(),
        }
    }

    /// One invalid field.
    pub fn invalid_field(
        field: impl Into<String>,
        zh: impl Into<String>,
        en: impl Into<String>,
    ) -> Error {
        Error::Invalid(vec![FieldIssue {
            field: field.into(),
            zh: zh.into(),
            en: en.into(),
        }])
    }

    /// The answer for a case that does not exist for this caller.
    pub fn case_not_found(case_no: &str) -> Error {
        Error::NotFound(Text::new(
            format!("没有编号为“{case_no}”的办件。"),
            format!("There is no case {case_no:?}."),
        ))
    }

    /// A refused step of the state machine. `allowed` is what the actor may do now; the
    /// refusal of a step the state does not take already carries it.
    pub fn from_transition(e: TransitionError, allowed: Vec<Action>) -> Error {
        let message = Text::new(e.message_zh(), e.to_string());
        match e {
            TransitionError::NotInState { allowed, .. } => Error::Conflict { message, allowed },
            TransitionError::NotForActor { .. } => Error::NotAllowed { message, allowed },
            TransitionError::ReasonRequired(_) => Error::Invalid(vec![FieldIssue {
                field: "note".into(),
                zh: message.zh,
                en: message.en,
            }]),
            TransitionError::ResultRequired | TransitionError::UnexpectedResult => {
                Error::Invalid(vec![FieldIssue {
                    field: "result".into(),
                    zh: message.zh,
                    en: message.en,
                }])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::case::{Actor, CaseStatus};

    #[test]
    fn refused_steps_say_what_is_allowed_now() {
        let e = TransitionError::NotInState {
            from: CaseStatus::Submitted,
            action: Action::Conclude,
            allowed: vec![Action::Accept, Action::NotAccept],
        };
        match Error::from_transition(e, Vec::new()) {
            Error::Conflict { message, allowed } => {
                assert_eq!(allowed, [Action::Accept, Action::NotAccept]);
                assert!(message.zh.contains("受理"), "{}", message.zh);
            }
            other => panic!("{other:?}"),
        }
        let e = TransitionError::NotForActor {
            action: Action::Accept,
            actor: Actor::Applicant,
        };
        match Error::from_transition(e, vec![Action::Withdraw]) {
            Error::NotAllowed { allowed, .. } => assert_eq!(allowed, [Action::Withdraw]),
            other => panic!("{other:?}"),
        }
        match Error::from_transition(TransitionError::ReasonRequired(Action::Suspend), vec![]) {
            Error::Invalid(issues) => assert_eq!(issues[0].field, "note"),
            other => panic!("{other:?}"),
        }
        match Error::from_transition(TransitionError::ResultRequired, vec![]) {
            Error::Invalid(issues) => assert_eq!(issues[0].field, "result"),
            other => panic!("{other:?}"),
        }
    }
}

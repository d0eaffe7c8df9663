//! The case (办件) lifecycle: states, actions, who may take them, and the rule table that
//! ties them together. Pure data and functions: the store records the history and the
//! HTTP layer turns a [`TransitionError`] into a 409 (or 422) with a clear message.
//!
//! Also here: case numbers (办件编号) and query codes (查询码), which together let anyone
//! holding both look up a case's status without logging in.

use std::fmt;

use rand::Rng;
use rand::rngs::OsRng;
use serde::{Deserialize, Serialize};

/// The longest reason (note) accepted, in characters.
pub const MAX_NOTE_CHARS: usize = 2000;

/// Business status of a case. Stored as [`CaseStatus::code`], shown by its labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    /// 草稿: saved, not submitted.
    Draft,
    /// 已申报: received online or at a window, routed to the department.
    Submitted,
    /// 已受理: formally accepted; the promised-time clock runs.
    Accepted,
    /// 不予受理: refused at intake (terminal).
    NotAccepted,
    /// 补齐补正: the applicant must supply or correct materials; clock paused.
    CorrectionRequested,
    /// 审查中: the department is processing.
    UnderReview,
    /// 特别程序: hearing, inspection, expert review …; clock paused.
    Suspended,
    /// 办结（准予）: concluded, granted (terminal).
    Approved,
    /// 办结（不予）: concluded, refused (terminal).
    Rejected,
    /// 已撤回: withdrawn by the applicant before conclusion (terminal).
    Withdrawn,
}

impl CaseStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [CaseStatus; 10] = [
        CaseStatus::Draft,
        CaseStatus::Submitted,
        CaseStatus::Accepted,
        CaseStatus::NotAccepted,
        CaseStatus::CorrectionRequested,
        CaseStatus::UnderReview,
        CaseStatus::Suspended,
        CaseStatus::Approved,
        CaseStatus::Rejected,
        CaseStatus::Withdrawn,
    ];

    /// Stable English code, as stored and as serialised.
    pub fn code(self) -> &'static str {
        match self {
            CaseStatus::Draft => "draft",
            CaseStatus::Submitted => "submitted",
            CaseStatus::Accepted => "accepted",
            CaseStatus::NotAccepted => "not_accepted",
            CaseStatus::CorrectionRequested => "correction_requested",
            CaseStatus::UnderReview => "under_review",
            CaseStatus::Suspended => "suspended",
            CaseStatus::Approved => "approved",
            CaseStatus::Rejected => "rejected",
            CaseStatus::Withdrawn => "withdrawn",
        }
    }

    /// Parses a stored code or a query-string value.
    pub fn from_code(s: &str) -> Option<Self> {
        CaseStatus::ALL.into_iter().find(|c| c.code() == s)
    }

    /// (Chinese, English) label.
    pub fn labels(self) -> (&'static str, &'static str) {
        match self {
            CaseStatus::Draft => ("草稿", "Draft"),
            CaseStatus::Submitted => ("已申报", "Submitted"),
            CaseStatus::Accepted => ("已受理", "Accepted"),
            CaseStatus::NotAccepted => ("不予受理", "Not accepted"),
            CaseStatus::CorrectionRequested => ("补齐补正", "Correction requested"),
            CaseStatus::UnderReview => ("审查中", "Under review"),
            CaseStatus::Suspended => ("特别程序", "Suspended (special procedure)"),
            CaseStatus::Approved => ("办结（准予）", "Concluded: approved"),
            CaseStatus::Rejected => ("办结（不予）", "Concluded: rejected"),
            CaseStatus::Withdrawn => ("已撤回", "Withdrawn"),
        }
    }

    /// Whether the case is finished: no action applies any more.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            CaseStatus::NotAccepted
                | CaseStatus::Approved
                | CaseStatus::Rejected
                | CaseStatus::Withdrawn
        )
    }

    /// Whether the promised-time clock stands still in this state.
    pub fn clock_paused(self) -> bool {
        matches!(
            self,
            CaseStatus::CorrectionRequested | CaseStatus::Suspended
        )
    }
}

impl fmt::Display for CaseStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A step in the lifecycle, as named in the department status API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// 提交申报: draft → submitted.
    Submit,
    /// 受理 (accept): submitted → accepted; the promised-time clock starts.
    Accept,
    /// 不予受理 (needs a reason).
    NotAccept,
    /// 要求补齐补正 (needs a reason).
    RequestCorrection,
    /// 提交补正材料 (supply the correction): back to review if the case had been
    /// accepted, else back to submitted for the acceptance decision.
    SupplyCorrection,
    /// 开始审查 (start review): accepted → under review, by the department only.
    StartReview,
    /// 中止（特别程序） (needs a reason).
    Suspend,
    /// 恢复审查 (resume): suspended → under review; the paused clock runs again.
    Resume,
    /// 办结, with a [`ConclusionResult`] (a rejection needs a reason).
    Conclude,
    /// 撤回 (withdraw): by the applicant, from any state before the conclusion.
    Withdraw,
}

impl Action {
    /// Every action, in lifecycle order (also the order of `allowed` lists).
    pub const ALL: [Action; 10] = [
        Action::Submit,
        Action::Accept,
        Action::NotAccept,
        Action::RequestCorrection,
        Action::SupplyCorrection,
        Action::StartReview,
        Action::Suspend,
        Action::Resume,
        Action::Conclude,
        Action::Withdraw,
    ];

    /// Stable English code, as in the status API and the history.
    pub fn code(self) -> &'static str {
        match self {
            Action::Submit => "submit",
            Action::Accept => "accept",
            Action::NotAccept => "not_accept",
            Action::RequestCorrection => "request_correction",
            Action::SupplyCorrection => "supply_correction",
            Action::StartReview => "start_review",
            Action::Suspend => "suspend",
            Action::Resume => "resume",
            Action::Conclude => "conclude",
            Action::Withdraw => "withdraw",
        }
    }

    /// Parses a stored or requested code; `None` for anything else.
    pub fn from_code(s: &str) -> Option<Self> {
        Action::ALL.into_iter().find(|a| a.code() == s)
    }

    /// (Chinese, English) label.
    pub fn labels(self) -> (&'static str, &'static str) {
        match self {
            Action::Submit => ("提交申报", "Submit"),
            Action::Accept => ("受理", "Accept"),
            Action::NotAccept => ("不予受理", "Not accept"),
            Action::RequestCorrection => ("要求补齐补正", "Request correction"),
            Action::SupplyCorrection => ("提交补正材料", "Supply correction"),
            Action::StartReview => ("开始审查", "Start review"),
            Action::Suspend => ("中止（特别程序）", "Suspend (special procedure)"),
            Action::Resume => ("恢复审查", "Resume review"),
            Action::Conclude => ("办结", "Conclude"),
            Action::Withdraw => ("撤回", "Withdraw"),
        }
    }

    /// Whether the action always needs a reason (a rejected conclusion needs one too).
    pub fn needs_reason(self) -> bool {
        matches!(
            self,
            Action::NotAccept | Action::RequestCorrection | Action::Suspend
        )
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// The result carried by [`Action::Conclude`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConclusionResult {
    /// 准予: the application is granted.
    Approved,
    /// 不予: refused, which always needs a reason.
    Rejected,
}

impl ConclusionResult {
    /// Stable English code.
    pub fn code(self) -> &'static str {
        match self {
            ConclusionResult::Approved => "approved",
            ConclusionResult::Rejected => "rejected",
        }
    }

    /// Parses a stored or requested code; `None` for anything else.
    pub fn from_code(s: &str) -> Option<Self> {
        [ConclusionResult::Approved, ConclusionResult::Rejected]
            .into_iter()
            .find(|r| r.code() == s)
    }

    /// (Chinese, English) label.
    pub fn labels(self) -> (&'static str, &'static str) {
        match self {
            ConclusionResult::Approved => ("准予", "Approved"),
            ConclusionResult::Rejected => ("不予", "Rejected"),
        }
    }

    /// The terminal status a conclusion with this result leads to.
    pub fn status(self) -> CaseStatus {
        match self {
            ConclusionResult::Approved => CaseStatus::Approved,
            ConclusionResult::Rejected => CaseStatus::Rejected,
        }
    }
}

/// Who acts. Department systems (API tokens) and department officers have the same rights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    /// The applicant (person or enterprise representative), online.
    Applicant,
    /// A service-hall window clerk (窗口工作人员).
    Clerk,
    /// An officer of the responsible department.
    DepartmentOfficer,
    /// The department's back-end, through the status API.
    DepartmentSystem,
    /// The gateway itself; reserved for timeouts, allowed nothing for now.
    System,
}

impl Actor {
    /// Every actor.
    pub const ALL: [Actor; 5] = [
        Actor::Applicant,
        Actor::Clerk,
        Actor::DepartmentOfficer,
        Actor::DepartmentSystem,
        Actor::System,
    ];

    /// Stable English code, as recorded in the history.
    pub fn code(self) -> &'static str {
        match self {
            Actor::Applicant => "applicant",
            Actor::Clerk => "clerk",
            Actor::DepartmentOfficer => "department_officer",
            Actor::DepartmentSystem => "department_system",
            Actor::System => "system",
        }
    }

    /// Parses a stored or requested code; `None` for anything else.
    pub fn from_code(s: &str) -> Option<Self> {
        Actor::ALL.into_iter().find(|a| a.code() == s)
    }

    /// (Chinese, English) label.
    pub fn labels(self) -> (&'static str, &'static str) {
        match self {
            Actor::Applicant => ("申请人", "Applicant"),
            Actor::Clerk => ("窗口工作人员", "Window clerk"),
            Actor::DepartmentOfficer => ("部门工作人员", "Department officer"),
            Actor::DepartmentSystem => ("部门业务系统", "Department system"),
            Actor::System => ("系统", "System"),
        }
    }
}

/// Facts about the case the rules depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaseFacts {
    /// The service is accepted at the window (一窗受理): clerks may accept.
    pub accept_at_window: bool,
    /// 即办件: with `accept_at_window`, a clerk may conclude on the spot.
    pub immediate: bool,
    /// The case has passed acceptance before; decides where a supplied correction returns.
    pub was_accepted: bool,
}

/// An action as requested, with its optional result and note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// What to do.
    pub action: Action,
    /// Only for [`Action::Conclude`], where it is required.
    pub result: Option<ConclusionResult>,
    /// Free-text note; the reason where one is required.
    pub note: Option<String>,
}

impl Request {
    /// A request without result or note.
    pub fn new(action: Action) -> Self {
        Request {
            action,
            result: None,
            note: None,
        }
    }

    /// The same request with a note.
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    /// The same request with a conclusion result.
    pub fn with_result(mut self, result: ConclusionResult) -> Self {
        self.result = Some(result);
        self
    }
}

/// Why a transition was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// The action does not apply to the current state; `allowed` lists what this actor
    /// could do now.
    #[error("“{}” is not possible while the case is “{}”; {}", .action.labels().1, .from.labels().1, allowed_en(.allowed))]
    NotInState {
        /// The current status.
        from: CaseStatus,
        /// The refused action.
        action: Action,
        /// What the same actor could do now, in [`Action::ALL`] order.
        allowed: Vec<Action>,
    },
    /// The state allows the action, but not for this actor.
    #[error("the {} may not “{}” this case", .actor.labels().1.to_lowercase(), .action.labels().1)]
    NotForActor {
        /// The refused action.
        action: Action,
        /// Who tried.
        actor: Actor,
    },
    /// not_accept, request_correction, suspend and a rejected conclusion need a reason
    /// (note, non-blank, at most [`MAX_NOTE_CHARS`] characters).
    #[error("{} needs a reason: a non-blank note of at most {MAX_NOTE_CHARS} characters", reason_subject_en(*.0))]
    ReasonRequired(Action),
    /// conclude needs a result.
    #[error("“Conclude” needs a result: approved or rejected")]
    ResultRequired,
    /// Only conclude carries a result.
    #[error("only “Conclude” takes a result")]
    UnexpectedResult,
}

impl TransitionError {
    /// The same reason in Chinese, naming states and actions by their Chinese labels.
    pub fn message_zh(&self) -> String {
        match self {
            TransitionError::NotInState {
                from,
                action,
                allowed,
            } => {
                let now = if allowed.is_empty() {
                    "当前没有可执行的操作".to_string()
                } else {
                    let names: Vec<String> = allowed
                        .iter()
                        .map(|a| format!("“{}”", a.labels().0))
                        .collect();
                    format!("当前可执行：{}", names.join("、"))
                };
                format!(
                    "办件处于“{}”状态，不能“{}”；{now}",
                    from.labels().0,
                    action.labels().0
                )
            }
            TransitionError::NotForActor { action, actor } => {
                format!(
                    "{}无权对本办件执行“{}”",
                    actor.labels().0,
                    action.labels().0
                )
            }
            TransitionError::ReasonRequired(action) => {
                let subject = match action {
                    Action::Conclude => "“办结（不予）”".to_string(),
                    other => format!("“{}”", other.labels().0),
                };
                format!("{subject}须填写理由（不能为空，不超过{MAX_NOTE_CHARS}字）")
            }
            TransitionError::ResultRequired => "“办结”须选择结果：准予或不予".to_string(),
            TransitionError::UnexpectedResult => "只有“办结”可以填写结果".to_string(),
        }
    }
}

fn allowed_en(allowed: &[Action]) -> String {
    if allowed.is_empty() {
        "nothing is allowed now".to_string()
    } else {
        let names: Vec<String> = allowed
            .iter()
            .map(|a| format!("“{}”", a.labels().1))
            .collect();
        format!("allowed now: {}", names.join(", "))
    }
}

fn reason_subject_en(action: Action) -> String {
    match action {
        Action::Conclude => "a rejected “Conclude”".to_string(),
        other => format!("“{}”", other.labels().1),
    }
}

/// Extra condition a clerk must meet to use a rule; other listed actors need none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClerkCondition {
    /// No condition (or no clerk in the rule's actors).
    None,
    /// The service is accepted at the window (`facts.accept_at_window`).
    AcceptAtWindow,
    /// An immediate case (即办件) accepted at the window
    /// (`facts.immediate && facts.accept_at_window`).
    ImmediateAtWindow,
}

impl ClerkCondition {
    fn holds(self, facts: CaseFacts) -> bool {
        match self {
            ClerkCondition::None => true,
            ClerkCondition::AcceptAtWindow => facts.accept_at_window,
            ClerkCondition::ImmediateAtWindow => facts.immediate && facts.accept_at_window,
        }
    }
}

/// One row of the rule table: in state `from`, `action` may be taken by `actors`
/// (a [`Actor::Clerk`] among them only when `clerk_condition` holds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// The state the rule applies in.
    pub from: CaseStatus,
    /// The action it allows.
    pub action: Action,
    /// Who may take it.
    pub actors: &'static [Actor],
    /// What a clerk additionally needs.
    pub clerk_condition: ClerkCondition,
}

impl Rule {
    /// Whether `actor` may use this rule for a case with these facts.
    pub fn permits(&self, actor: Actor, facts: CaseFacts) -> bool {
        self.actors.contains(&actor) && (actor != Actor::Clerk || self.clerk_condition.holds(facts))
    }
}

const APPLICANT: &[Actor] = &[Actor::Applicant];
const APPLICANT_OR_CLERK: &[Actor] = &[Actor::Applicant, Actor::Clerk];
const DEPARTMENT: &[Actor] = &[Actor::DepartmentOfficer, Actor::DepartmentSystem];
const DEPARTMENT_OR_CLERK: &[Actor] = &[
    Actor::DepartmentOfficer,
    Actor::DepartmentSystem,
    Actor::Clerk,
];

const fn rule(
    from: CaseStatus,
    action: Action,
    actors: &'static [Actor],
    clerk_condition: ClerkCondition,
) -> Rule {
    Rule {
        from,
        action,
        actors,
        clerk_condition,
    }
}

static RULES: [Rule; 17] = {
    use Action as A;
    use CaseStatus as S;
    use ClerkCondition as C;
    [
        rule(S::Draft, A::Submit, APPLICANT_OR_CLERK, C::None),
        rule(
            S::Submitted,
            A::Accept,
            DEPARTMENT_OR_CLERK,
            C::AcceptAtWindow,
        ),
        rule(
            S::Submitted,
            A::NotAccept,
            DEPARTMENT_OR_CLERK,
            C::AcceptAtWindow,
        ),
        rule(
            S::Submitted,
            A::RequestCorrection,
            DEPARTMENT_OR_CLERK,
            C::AcceptAtWindow,
        ),
        rule(S::Submitted, A::Withdraw, APPLICANT, C::None),
        rule(S::Accepted, A::StartReview, DEPARTMENT, C::None),
        rule(S::Accepted, A::RequestCorrection, DEPARTMENT, C::None),
        rule(
            S::Accepted,
            A::Conclude,
            DEPARTMENT_OR_CLERK,
            C::ImmediateAtWindow,
        ),
        rule(S::Accepted, A::Withdraw, APPLICANT, C::None),
        rule(
            S::CorrectionRequested,
            A::SupplyCorrection,
            APPLICANT_OR_CLERK,
            C::None,
        ),
        rule(S::CorrectionRequested, A::Withdraw, APPLICANT, C::None),
        rule(S::UnderReview, A::RequestCorrection, DEPARTMENT, C::None),
        rule(S::UnderReview, A::Suspend, DEPARTMENT, C::None),
        rule(
            S::UnderReview,
            A::Conclude,
            DEPARTMENT_OR_CLERK,
            C::ImmediateAtWindow,
        ),
        rule(S::UnderReview, A::Withdraw, APPLICANT, C::None),
        rule(S::Suspended, A::Resume, DEPARTMENT, C::None),
        rule(S::Suspended, A::Withdraw, APPLICANT, C::None),
    ]
};

/// The rule table as data: (from, action, actors allowed) rows; the target state is
/// computed by [`transition`] (it depends on the result and on the case's facts).
pub fn rules() -> &'static [Rule] {
    &RULES
}

fn find_rule(from: CaseStatus, action: Action) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.from == from && r.action == action)
}

/// What `actor` may do now on a case in `from` with these facts, in [`Action::ALL`] order.
pub fn allowed_actions(from: CaseStatus, actor: Actor, facts: CaseFacts) -> Vec<Action> {
    Action::ALL
        .into_iter()
        .filter(|&a| find_rule(from, a).is_some_and(|r| r.permits(actor, facts)))
        .collect()
}

/// Checks a requested step and returns the state it leads to.
///
/// Order of checks: the state (does the action apply at all?), then the actor, then the
/// result and the reason.
pub fn transition(
    from: CaseStatus,
    req: &Request,
    actor: Actor,
    facts: CaseFacts,
) -> Result<CaseStatus, TransitionError> {
    let Some(rule) = find_rule(from, req.action) else {
        return Err(TransitionError::NotInState {
            from,
            action: req.action,
            allowed: allowed_actions(from, actor, facts),
        });
    };
    if !rule.permits(actor, facts) {
        return Err(TransitionError::NotForActor {
            action: req.action,
            actor,
        });
    }
    let needs_reason = match (req.action, req.result) {
        (Action::Conclude, None) => return Err(TransitionError::ResultRequired),
        (Action::Conclude, Some(result)) => result == ConclusionResult::Rejected,
        (_, Some(_)) => return Err(TransitionError::UnexpectedResult),
        (action, None) => action.needs_reason(),
    };
    if needs_reason && !is_valid_reason(req.note.as_deref()) {
        return Err(TransitionError::ReasonRequired(req.action));
    }
    Ok(destination(from, req, facts))
}

fn is_valid_reason(note: Option<&str>) -> bool {
    note.is_some_and(|n| !n.trim().is_empty() && n.chars().count() <= MAX_NOTE_CHARS)
}

/// The target of an already-checked request.
fn destination(from: CaseStatus, req: &Request, facts: CaseFacts) -> CaseStatus {
    match req.action {
        Action::Submit => CaseStatus::Submitted,
        Action::Accept => CaseStatus::Accepted,
        Action::NotAccept => CaseStatus::NotAccepted,
        Action::RequestCorrection => CaseStatus::CorrectionRequested,
        Action::SupplyCorrection if facts.was_accepted => CaseStatus::UnderReview,
        Action::SupplyCorrection => CaseStatus::Submitted,
        Action::StartReview | Action::Resume => CaseStatus::UnderReview,
        Action::Suspend => CaseStatus::Suspended,
        Action::Conclude => req.result.map_or(from, ConclusionResult::status),
        Action::Withdraw => CaseStatus::Withdrawn,
    }
}

/// Prefix of every case number (呼伦贝尔, HuLunBuEr).
pub const CASE_NUMBER_PREFIX: &str = "HLBE";

/// Crockford base32 without the look-alikes 0, 1 (and, as in Crockford, I, L, O, U).
const CASE_NUMBER_ALPHABET: &[u8; 30] = b"23456789ABCDEFGHJKMNPQRSTVWXYZ";
const CASE_NUMBER_RANDOM_LEN: usize = 8;
const CASE_NUMBER_LEN: usize = CASE_NUMBER_PREFIX.len() + 8 + 1 + CASE_NUMBER_RANDOM_LEN;

/// Readable, unique case number: "HLBE" + yyyymmdd + "-" + 8 random characters from a
/// Crockford-like alphabet without 0/O/1/I/L (30 symbols, about 6.6 × 10¹¹ per day).
/// Collision handling is the store's job: it retries on a unique violation.
/// Example: `HLBE20261127-7KQ2M9XD`.
pub fn new_case_number(date: chrono::NaiveDate) -> String {
    let mut rng = OsRng;
    let mut out = String::with_capacity(CASE_NUMBER_LEN);
    out.push_str(CASE_NUMBER_PREFIX);
    out.push_str(&date.format("%Y%m%d").to_string());
    out.push('-');
    for _ in 0..CASE_NUMBER_RANDOM_LEN {
        let i = rng.gen_range(0..CASE_NUMBER_ALPHABET.len());
        out.push(char::from(CASE_NUMBER_ALPHABET[i]));
    }
    out
}

/// Syntax check for path parameters: the exact shape [`new_case_number`] produces
/// (uppercase, real date, alphabet).
pub fn is_case_number(s: &str) -> bool {
    if !s.is_ascii() || s.len() != CASE_NUMBER_LEN {
        return false;
    }
    let Some(rest) = s.strip_prefix(CASE_NUMBER_PREFIX) else {
        return false;
    };
    let (date, rest) = rest.split_at(8);
    if !date.bytes().all(|c| c.is_ascii_digit()) {
        return false;
    }
    let (Ok(y), Ok(m), Ok(d)) = (
        date[0..4].parse::<i32>(),
        date[4..6].parse::<u32>(),
        date[6..8].parse::<u32>(),
    ) else {
        return false;
    };
    if chrono::NaiveDate::from_ymd_opt(y, m, d).is_none() {
        return false;
    }
    let Some(random) = rest.strip_prefix('-') else {
        return false;
    };
    random.len() == CASE_NUMBER_RANDOM_LEN
        && random.bytes().all(|c| CASE_NUMBER_ALPHABET.contains(&c))
}

/// A random 6-digit query code (查询码), uniformly 000000–999999 from the OS RNG.
pub fn new_query_code() -> String {
    let n: u32 = OsRng.gen_range(0..1_000_000);
    format!("{n:06}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    const NO_FACTS: CaseFacts = CaseFacts {
        accept_at_window: false,
        immediate: false,
        was_accepted: false,
    };
    const AT_WINDOW: CaseFacts = CaseFacts {
        accept_at_window: true,
        immediate: false,
        was_accepted: false,
    };
    const IMMEDIATE_AT_WINDOW: CaseFacts = CaseFacts {
        accept_at_window: true,
        immediate: true,
        was_accepted: true,
    };
    const DEPT: [Actor; 2] = [Actor::DepartmentOfficer, Actor::DepartmentSystem];

    fn req(action: Action) -> Request {
        Request::new(action)
    }

    fn with_reason(action: Action) -> Request {
        Request::new(action).with_note("材料不全")
    }

    fn approve() -> Request {
        Request::new(Action::Conclude).with_result(ConclusionResult::Approved)
    }

    fn reject() -> Request {
        Request::new(Action::Conclude)
            .with_result(ConclusionResult::Rejected)
            .with_note("不符合条件")
    }

    fn ok(from: CaseStatus, r: &Request, actor: Actor, facts: CaseFacts) -> CaseStatus {
        transition(from, r, actor, facts)
            .unwrap_or_else(|e| panic!("{from:?} {:?} by {actor:?}: {e}", r.action))
    }

    fn err(from: CaseStatus, r: &Request, actor: Actor, facts: CaseFacts) -> TransitionError {
        match transition(from, r, actor, facts) {
            Ok(to) => panic!("{from:?} {:?} by {actor:?} went to {to:?}", r.action),
            Err(e) => e,
        }
    }

    // ---- one test per rule row (allowed) ----

    #[test]
    fn draft_submit_by_applicant_or_clerk() {
        for actor in [Actor::Applicant, Actor::Clerk] {
            assert_eq!(
                ok(CaseStatus::Draft, &req(Action::Submit), actor, NO_FACTS),
                CaseStatus::Submitted
            );
        }
    }

    #[test]
    fn submitted_accept_by_department_or_window_clerk() {
        for actor in DEPT {
            assert_eq!(
                ok(CaseStatus::Submitted, &req(Action::Accept), actor, NO_FACTS),
                CaseStatus::Accepted
            );
        }
        assert_eq!(
            ok(
                CaseStatus::Submitted,
                &req(Action::Accept),
                Actor::Clerk,
                AT_WINDOW
            ),
            CaseStatus::Accepted
        );
    }

    #[test]
    fn submitted_not_accept_by_department_or_window_clerk() {
        for (actor, facts) in [
            (Actor::DepartmentOfficer, NO_FACTS),
            (Actor::DepartmentSystem, NO_FACTS),
            (Actor::Clerk, AT_WINDOW),
        ] {
            assert_eq!(
                ok(
                    CaseStatus::Submitted,
                    &with_reason(Action::NotAccept),
                    actor,
                    facts
                ),
                CaseStatus::NotAccepted
            );
        }
    }

    #[test]
    fn submitted_request_correction_by_department_or_window_clerk() {
        for (actor, facts) in [
            (Actor::DepartmentOfficer, NO_FACTS),
            (Actor::DepartmentSystem, NO_FACTS),
            (Actor::Clerk, AT_WINDOW),
        ] {
            assert_eq!(
                ok(
                    CaseStatus::Submitted,
                    &with_reason(Action::RequestCorrection),
                    actor,
                    facts
                ),
                CaseStatus::CorrectionRequested
            );
        }
    }

    #[test]
    fn withdraw_by_applicant_from_every_open_state() {
        for from in [
            CaseStatus::Submitted,
            CaseStatus::Accepted,
            CaseStatus::CorrectionRequested,
            CaseStatus::UnderReview,
            CaseStatus::Suspended,
        ] {
            assert_eq!(
                ok(from, &req(Action::Withdraw), Actor::Applicant, NO_FACTS),
                CaseStatus::Withdrawn
            );
        }
    }

    #[test]
    fn accepted_start_review_by_department() {
        for actor in DEPT {
            assert_eq!(
                ok(
                    CaseStatus::Accepted,
                    &req(Action::StartReview),
                    actor,
                    NO_FACTS
                ),
                CaseStatus::UnderReview
            );
        }
    }

    #[test]
    fn accepted_request_correction_by_department() {
        for actor in DEPT {
            assert_eq!(
                ok(
                    CaseStatus::Accepted,
                    &with_reason(Action::RequestCorrection),
                    actor,
                    NO_FACTS
                ),
                CaseStatus::CorrectionRequested
            );
        }
    }

    #[test]
    fn accepted_conclude_by_department_both_results() {
        for actor in DEPT {
            assert_eq!(
                ok(CaseStatus::Accepted, &approve(), actor, NO_FACTS),
                CaseStatus::Approved
            );
            assert_eq!(
                ok(CaseStatus::Accepted, &reject(), actor, NO_FACTS),
                CaseStatus::Rejected
            );
        }
    }

    #[test]
    fn conclude_by_clerk_for_an_immediate_case_at_the_window() {
        for from in [CaseStatus::Accepted, CaseStatus::UnderReview] {
            assert_eq!(
                ok(from, &approve(), Actor::Clerk, IMMEDIATE_AT_WINDOW),
                CaseStatus::Approved
            );
            assert_eq!(
                ok(from, &reject(), Actor::Clerk, IMMEDIATE_AT_WINDOW),
                CaseStatus::Rejected
            );
        }
    }

    #[test]
    fn supply_correction_returns_to_review_when_accepted_before() {
        let facts = CaseFacts {
            was_accepted: true,
            ..NO_FACTS
        };
        for actor in [Actor::Applicant, Actor::Clerk] {
            assert_eq!(
                ok(
                    CaseStatus::CorrectionRequested,
                    &req(Action::SupplyCorrection),
                    actor,
                    facts
                ),
                CaseStatus::UnderReview
            );
        }
    }

    #[test]
    fn supply_correction_returns_to_submitted_when_never_accepted() {
        for actor in [Actor::Applicant, Actor::Clerk] {
            assert_eq!(
                ok(
                    CaseStatus::CorrectionRequested,
                    &req(Action::SupplyCorrection),
                    actor,
                    NO_FACTS
                ),
                CaseStatus::Submitted
            );
        }
    }

    #[test]
    fn under_review_request_correction_by_department() {
        for actor in DEPT {
            assert_eq!(
                ok(
                    CaseStatus::UnderReview,
                    &with_reason(Action::RequestCorrection),
                    actor,
                    NO_FACTS
                ),
                CaseStatus::CorrectionRequested
            );
        }
    }

    #[test]
    fn under_review_suspend_by_department() {
        for actor in DEPT {
            assert_eq!(
                ok(
                    CaseStatus::UnderReview,
                    &with_reason(Action::Suspend),
                    actor,
                    NO_FACTS
                ),
                CaseStatus::Suspended
            );
        }
    }

    #[test]
    fn under_review_conclude_by_department() {
        for actor in DEPT {
            assert_eq!(
                ok(CaseStatus::UnderReview, &approve(), actor, NO_FACTS),
                CaseStatus::Approved
            );
            assert_eq!(
                ok(CaseStatus::UnderReview, &reject(), actor, NO_FACTS),
                CaseStatus::Rejected
            );
        }
    }

    #[test]
    fn suspended_resume_by_department() {
        for actor in DEPT {
            assert_eq!(
                ok(CaseStatus::Suspended, &req(Action::Resume), actor, NO_FACTS),
                CaseStatus::UnderReview
            );
        }
    }

    #[test]
    fn every_rule_row_is_reachable_by_some_actor() {
        let all_facts = IMMEDIATE_AT_WINDOW;
        for r in rules() {
            let actor = r.actors[0];
            let request = match r.action {
                Action::Conclude => approve(),
                a if a.needs_reason() => with_reason(a),
                a => req(a),
            };
            assert!(
                transition(r.from, &request, actor, all_facts).is_ok(),
                "{r:?}"
            );
        }
        let pairs: HashSet<(CaseStatus, Action)> =
            rules().iter().map(|r| (r.from, r.action)).collect();
        assert_eq!(pairs.len(), rules().len(), "duplicate rows");
    }

    // ---- illegal transitions ----

    #[test]
    fn accept_on_a_draft_is_not_in_state() {
        assert_eq!(
            err(
                CaseStatus::Draft,
                &req(Action::Accept),
                Actor::DepartmentOfficer,
                NO_FACTS
            ),
            TransitionError::NotInState {
                from: CaseStatus::Draft,
                action: Action::Accept,
                allowed: vec![],
            }
        );
        assert_eq!(
            err(
                CaseStatus::Draft,
                &req(Action::Accept),
                Actor::Applicant,
                NO_FACTS
            ),
            TransitionError::NotInState {
                from: CaseStatus::Draft,
                action: Action::Accept,
                allowed: vec![Action::Submit],
            }
        );
    }

    #[test]
    fn conclude_on_submitted_is_not_in_state() {
        assert_eq!(
            err(
                CaseStatus::Submitted,
                &approve(),
                Actor::DepartmentSystem,
                NO_FACTS
            ),
            TransitionError::NotInState {
                from: CaseStatus::Submitted,
                action: Action::Conclude,
                allowed: vec![Action::Accept, Action::NotAccept, Action::RequestCorrection],
            }
        );
    }

    #[test]
    fn resume_when_not_suspended_is_not_in_state() {
        for from in CaseStatus::ALL {
            if from == CaseStatus::Suspended {
                continue;
            }
            assert!(
                matches!(
                    err(
                        from,
                        &req(Action::Resume),
                        Actor::DepartmentOfficer,
                        NO_FACTS
                    ),
                    TransitionError::NotInState { .. }
                ),
                "{from:?}"
            );
        }
    }

    #[test]
    fn withdrawing_a_draft_is_not_in_state() {
        assert!(matches!(
            err(
                CaseStatus::Draft,
                &req(Action::Withdraw),
                Actor::Applicant,
                NO_FACTS
            ),
            TransitionError::NotInState { .. }
        ));
    }

    #[test]
    fn terminal_states_allow_nothing_for_anyone() {
        for from in CaseStatus::ALL.into_iter().filter(|s| s.is_terminal()) {
            for actor in Actor::ALL {
                assert!(
                    allowed_actions(from, actor, IMMEDIATE_AT_WINDOW).is_empty(),
                    "{from:?} {actor:?}"
                );
                for action in Action::ALL {
                    let r = match action {
                        Action::Conclude => approve(),
                        a => with_reason(a),
                    };
                    assert_eq!(
                        err(from, &r, actor, IMMEDIATE_AT_WINDOW),
                        TransitionError::NotInState {
                            from,
                            action,
                            allowed: vec![],
                        }
                    );
                }
            }
        }
    }

    #[test]
    fn state_is_checked_before_actor_and_requirements() {
        // Wrong state, wrong actor, missing result: the state is reported.
        assert!(matches!(
            err(
                CaseStatus::Draft,
                &req(Action::Conclude),
                Actor::Applicant,
                NO_FACTS
            ),
            TransitionError::NotInState { .. }
        ));
        // Right state, wrong actor, missing reason: the actor is reported.
        assert_eq!(
            err(
                CaseStatus::Submitted,
                &req(Action::NotAccept),
                Actor::Applicant,
                NO_FACTS
            ),
            TransitionError::NotForActor {
                action: Action::NotAccept,
                actor: Actor::Applicant
            }
        );
    }

    // ---- actor refusals ----

    #[test]
    fn clerk_may_not_accept_without_window_acceptance() {
        for action in [Action::Accept, Action::NotAccept, Action::RequestCorrection] {
            assert_eq!(
                err(
                    CaseStatus::Submitted,
                    &with_reason(action),
                    Actor::Clerk,
                    NO_FACTS
                ),
                TransitionError::NotForActor {
                    action,
                    actor: Actor::Clerk
                }
            );
        }
    }

    #[test]
    fn applicant_may_not_accept() {
        assert_eq!(
            err(
                CaseStatus::Submitted,
                &req(Action::Accept),
                Actor::Applicant,
                AT_WINDOW
            ),
            TransitionError::NotForActor {
                action: Action::Accept,
                actor: Actor::Applicant
            }
        );
    }

    #[test]
    fn clerk_may_not_conclude_unless_immediate_and_at_window() {
        let immediate_online = CaseFacts {
            accept_at_window: false,
            immediate: true,
            was_accepted: true,
        };
        for facts in [NO_FACTS, AT_WINDOW, immediate_online] {
            assert_eq!(
                err(CaseStatus::UnderReview, &approve(), Actor::Clerk, facts),
                TransitionError::NotForActor {
                    action: Action::Conclude,
                    actor: Actor::Clerk
                }
            );
        }
    }

    #[test]
    fn clerk_may_not_start_review_suspend_or_resume_even_at_the_window() {
        for (from, action) in [
            (CaseStatus::Accepted, Action::StartReview),
            (CaseStatus::UnderReview, Action::Suspend),
            (CaseStatus::Suspended, Action::Resume),
            (CaseStatus::Accepted, Action::RequestCorrection),
        ] {
            assert!(matches!(
                err(
                    from,
                    &with_reason(action),
                    Actor::Clerk,
                    IMMEDIATE_AT_WINDOW
                ),
                TransitionError::NotForActor { .. }
            ));
        }
    }

    #[test]
    fn only_the_applicant_withdraws_and_department_cannot_submit_or_supply() {
        for actor in [Actor::Clerk, Actor::DepartmentOfficer, Actor::System] {
            assert!(matches!(
                err(
                    CaseStatus::UnderReview,
                    &req(Action::Withdraw),
                    actor,
                    NO_FACTS
                ),
                TransitionError::NotForActor { .. }
            ));
        }
        assert!(matches!(
            err(
                CaseStatus::Draft,
                &req(Action::Submit),
                Actor::DepartmentOfficer,
                NO_FACTS
            ),
            TransitionError::NotForActor { .. }
        ));
        assert!(matches!(
            err(
                CaseStatus::CorrectionRequested,
                &req(Action::SupplyCorrection),
                Actor::DepartmentSystem,
                NO_FACTS
            ),
            TransitionError::NotForActor { .. }
        ));
    }

    #[test]
    fn system_may_do_nothing() {
        for from in CaseStatus::ALL {
            assert!(allowed_actions(from, Actor::System, IMMEDIATE_AT_WINDOW).is_empty());
        }
        assert!(matches!(
            err(
                CaseStatus::Submitted,
                &req(Action::Accept),
                Actor::System,
                AT_WINDOW
            ),
            TransitionError::NotForActor { .. }
        ));
    }

    // ---- reasons and results ----

    #[test]
    fn reason_required_for_not_accept_request_correction_and_suspend() {
        for (from, action) in [
            (CaseStatus::Submitted, Action::NotAccept),
            (CaseStatus::Submitted, Action::RequestCorrection),
            (CaseStatus::UnderReview, Action::Suspend),
        ] {
            for note in [None, Some(""), Some("  \n\t　")] {
                let r = Request {
                    action,
                    result: None,
                    note: note.map(str::to_string),
                };
                assert_eq!(
                    err(from, &r, Actor::DepartmentOfficer, NO_FACTS),
                    TransitionError::ReasonRequired(action),
                    "{action:?} {note:?}"
                );
            }
        }
    }

    #[test]
    fn reason_must_not_exceed_the_limit_counted_in_characters() {
        let at_limit = Request::new(Action::NotAccept).with_note("缺".repeat(MAX_NOTE_CHARS));
        assert_eq!(
            ok(
                CaseStatus::Submitted,
                &at_limit,
                Actor::DepartmentOfficer,
                NO_FACTS
            ),
            CaseStatus::NotAccepted
        );
        let over = Request::new(Action::NotAccept).with_note("缺".repeat(MAX_NOTE_CHARS + 1));
        assert_eq!(
            err(
                CaseStatus::Submitted,
                &over,
                Actor::DepartmentOfficer,
                NO_FACTS
            ),
            TransitionError::ReasonRequired(Action::NotAccept)
        );
    }

    #[test]
    fn rejected_conclusion_needs_a_reason_approved_does_not() {
        let bare_reject = Request::new(Action::Conclude).with_result(ConclusionResult::Rejected);
        assert_eq!(
            err(
                CaseStatus::UnderReview,
                &bare_reject,
                Actor::DepartmentSystem,
                NO_FACTS
            ),
            TransitionError::ReasonRequired(Action::Conclude)
        );
        assert_eq!(
            ok(
                CaseStatus::UnderReview,
                &approve(),
                Actor::DepartmentSystem,
                NO_FACTS
            ),
            CaseStatus::Approved
        );
    }

    #[test]
    fn conclude_needs_a_result_and_others_must_not_carry_one() {
        assert_eq!(
            err(
                CaseStatus::UnderReview,
                &Request::new(Action::Conclude).with_note("好"),
                Actor::DepartmentOfficer,
                NO_FACTS
            ),
            TransitionError::ResultRequired
        );
        assert_eq!(
            err(
                CaseStatus::Accepted,
                &Request::new(Action::StartReview).with_result(ConclusionResult::Approved),
                Actor::DepartmentOfficer,
                NO_FACTS
            ),
            TransitionError::UnexpectedResult
        );
        // The result is checked before the reason.
        assert_eq!(
            err(
                CaseStatus::Submitted,
                &Request::new(Action::NotAccept).with_result(ConclusionResult::Rejected),
                Actor::DepartmentOfficer,
                NO_FACTS
            ),
            TransitionError::UnexpectedResult
        );
    }

    #[test]
    fn notes_are_optional_where_no_reason_is_needed() {
        let r = Request::new(Action::Accept).with_note("已核对原件");
        assert_eq!(
            ok(
                CaseStatus::Submitted,
                &r,
                Actor::DepartmentOfficer,
                NO_FACTS
            ),
            CaseStatus::Accepted
        );
    }

    // ---- allowed_actions ----

    #[test]
    fn allowed_actions_for_a_few_states_and_actors() {
        assert_eq!(
            allowed_actions(CaseStatus::Draft, Actor::Applicant, NO_FACTS),
            vec![Action::Submit]
        );
        assert_eq!(
            allowed_actions(CaseStatus::Submitted, Actor::Applicant, NO_FACTS),
            vec![Action::Withdraw]
        );
        assert_eq!(
            allowed_actions(CaseStatus::Submitted, Actor::Clerk, NO_FACTS),
            Vec::<Action>::new()
        );
        assert_eq!(
            allowed_actions(CaseStatus::Submitted, Actor::Clerk, AT_WINDOW),
            vec![Action::Accept, Action::NotAccept, Action::RequestCorrection]
        );
        assert_eq!(
            allowed_actions(CaseStatus::Accepted, Actor::DepartmentSystem, NO_FACTS),
            vec![
                Action::RequestCorrection,
                Action::StartReview,
                Action::Conclude
            ]
        );
        assert_eq!(
            allowed_actions(CaseStatus::Accepted, Actor::Clerk, AT_WINDOW),
            Vec::<Action>::new()
        );
        assert_eq!(
            allowed_actions(CaseStatus::Accepted, Actor::Clerk, IMMEDIATE_AT_WINDOW),
            vec![Action::Conclude]
        );
        assert_eq!(
            allowed_actions(CaseStatus::UnderReview, Actor::DepartmentOfficer, NO_FACTS),
            vec![Action::RequestCorrection, Action::Suspend, Action::Conclude]
        );
        assert_eq!(
            allowed_actions(CaseStatus::Suspended, Actor::DepartmentOfficer, NO_FACTS),
            vec![Action::Resume]
        );
        assert_eq!(
            allowed_actions(CaseStatus::CorrectionRequested, Actor::Clerk, NO_FACTS),
            vec![Action::SupplyCorrection]
        );
        assert_eq!(
            allowed_actions(CaseStatus::CorrectionRequested, Actor::Applicant, NO_FACTS),
            vec![Action::SupplyCorrection, Action::Withdraw]
        );
    }

    #[test]
    fn allowed_actions_agree_with_transition() {
        let facts_set = [NO_FACTS, AT_WINDOW, IMMEDIATE_AT_WINDOW];
        for from in CaseStatus::ALL {
            for actor in Actor::ALL {
                for facts in facts_set {
                    let allowed = allowed_actions(from, actor, facts);
                    for action in Action::ALL {
                        let r = match action {
                            Action::Conclude => approve(),
                            a => with_reason(a),
                        };
                        assert_eq!(
                            transition(from, &r, actor, facts).is_ok(),
                            allowed.contains(&action),
                            "{from:?} {action:?} {actor:?} {facts:?}"
                        );
                    }
                }
            }
        }
    }

    // ---- codes and labels ----

    #[test]
    fn codes_round_trip_and_match_serde() {
        for s in CaseStatus::ALL {
            assert_eq!(CaseStatus::from_code(s.code()), Some(s));
            assert_eq!(
                serde_json::to_string(&s).expect("serialise"),
                format!("\"{}\"", s.code())
            );
        }
        for a in Action::ALL {
            assert_eq!(Action::from_code(a.code()), Some(a));
            assert_eq!(
                serde_json::to_string(&a).expect("serialise"),
                format!("\"{}\"", a.code())
            );
        }
        for a in Actor::ALL {
            assert_eq!(Actor::from_code(a.code()), Some(a));
            assert_eq!(
                serde_json::to_string(&a).expect("serialise"),
                format!("\"{}\"", a.code())
            );
        }
        for r in [ConclusionResult::Approved, ConclusionResult::Rejected] {
            assert_eq!(ConclusionResult::from_code(r.code()), Some(r));
            assert_eq!(
                serde_json::to_string(&r).expect("serialise"),
                format!("\"{}\"", r.code())
            );
        }
        assert_eq!(CaseStatus::from_code("Draft"), None);
        assert_eq!(Action::from_code("approve"), None);
        let codes: HashSet<&str> = CaseStatus::ALL.iter().map(|s| s.code()).collect();
        assert_eq!(codes.len(), 10);
        let codes: HashSet<&str> = Action::ALL.iter().map(|a| a.code()).collect();
        assert_eq!(codes.len(), 10);
    }

    #[test]
    fn labels_present_for_all() {
        let mut pairs: Vec<(&str, &str)> = CaseStatus::ALL.iter().map(|s| s.labels()).collect();
        pairs.extend(Action::ALL.iter().map(|a| a.labels()));
        pairs.extend(Actor::ALL.iter().map(|a| a.labels()));
        for (zh, en) in pairs {
            assert!(!zh.trim().is_empty() && !en.trim().is_empty());
            assert!(!zh.is_ascii(), "{zh} should be Chinese");
            assert!(en.is_ascii(), "{en} should be English");
        }
        assert_eq!(
            CaseStatus::Approved.labels(),
            ("办结（准予）", "Concluded: approved")
        );
        assert_eq!(Action::Suspend.labels().0, "中止（特别程序）");
    }

    #[test]
    fn terminal_and_paused_states() {
        let terminal: Vec<CaseStatus> = CaseStatus::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
            .collect();
        assert_eq!(
            terminal,
            vec![
                CaseStatus::NotAccepted,
                CaseStatus::Approved,
                CaseStatus::Rejected,
                CaseStatus::Withdrawn
            ]
        );
        let paused: Vec<CaseStatus> = CaseStatus::ALL
            .into_iter()
            .filter(|s| s.clock_paused())
            .collect();
        assert_eq!(
            paused,
            vec![CaseStatus::CorrectionRequested, CaseStatus::Suspended]
        );
    }

    #[test]
    fn messages_name_states_and_actions() {
        let e = TransitionError::NotInState {
            from: CaseStatus::Submitted,
            action: Action::Conclude,
            allowed: vec![Action::Accept, Action::NotAccept],
        };
        assert_eq!(
            e.to_string(),
            "“Conclude” is not possible while the case is “Submitted”; allowed now: “Accept”, “Not accept”"
        );
        assert_eq!(
            e.message_zh(),
            "办件处于“已申报”状态，不能“办结”；当前可执行：“受理”、“不予受理”"
        );
        let none = TransitionError::NotInState {
            from: CaseStatus::Withdrawn,
            action: Action::Resume,
            allowed: vec![],
        };
        assert!(none.to_string().ends_with("nothing is allowed now"));
        assert!(none.message_zh().ends_with("当前没有可执行的操作"));
        let actor = TransitionError::NotForActor {
            action: Action::Accept,
            actor: Actor::Clerk,
        };
        assert_eq!(
            actor.to_string(),
            "the window clerk may not “Accept” this case"
        );
        assert_eq!(actor.message_zh(), "窗口工作人员无权对本办件执行“受理”");
        assert_eq!(
            TransitionError::ReasonRequired(Action::Conclude).message_zh(),
            "“办结（不予）”须填写理由（不能为空，不超过2000字）"
        );
        assert!(
            TransitionError::ReasonRequired(Action::Suspend)
                .to_string()
                .starts_with("“Suspend (special procedure)” needs a reason")
        );
        assert!(!TransitionError::ResultRequired.message_zh().is_empty());
        assert!(!TransitionError::UnexpectedResult.to_string().is_empty());
    }

    // ---- case numbers and query codes ----

    #[test]
    fn case_number_has_the_documented_shape() {
        let date = chrono::NaiveDate::from_ymd_opt(2026, 11, 27).expect("date");
        let n = new_case_number(date);
        assert_eq!(n.len(), 21);
        assert!(n.starts_with("HLBE20261127-"), "{n}");
        assert!(is_case_number(&n), "{n}");
        for c in n[13..].chars() {
            assert!(!"0O1IL".contains(c), "{n}");
            assert!(c.is_ascii_uppercase() || c.is_ascii_digit(), "{n}");
        }
    }

    #[test]
    fn case_numbers_are_unique_over_ten_thousand_draws() {
        let date = chrono::NaiveDate::from_ymd_opt(2026, 1, 5).expect("date");
        let set: HashSet<String> = (0..10_000).map(|_| new_case_number(date)).collect();
        assert_eq!(set.len(), 10_000);
        assert!(set.iter().all(|n| is_case_number(n)));
    }

    #[test]
    fn is_case_number_refuses_malformed_input() {
        assert!(is_case_number("HLBE20261127-7KQ2M9XD"));
        for bad in [
            "",
            "HLBE20261127-7KQ2M9X",
            "HLBE20261127-7KQ2M9XDA",
            "hlbe20261127-7KQ2M9XD",
            "HLBE20261127-7kq2m9xd",
            "XXXX20261127-7KQ2M9XD",
            "HLBE20261127_7KQ2M9XD",
            "HLBE20261327-7KQ2M9XD",
            "HLBE20260230-7KQ2M9XD",
            "HLBE2026112a-7KQ2M9XD",
            "HLBE20261127-7KQ2M9X0",
            "HLBE20261127-7KQ2M9XO",
            "HLBE20261127-7KQ2M9X1",
            "HLBE20261127-7KQ2M9XI",
            "HLBE20261127-7KQ2M9XL",
            "HLBE20261127-7KQ2M9X中",
            "HLBE2026112７-7KQ2M9XD",
            "HLBE2026112７-7KQ2M9",
        ] {
            assert!(!is_case_number(bad), "{bad:?}");
        }
    }

    #[test]
    fn query_codes_are_six_digits() {
        let mut seen = HashSet::new();
        for _ in 0..1000 {
            let q = new_query_code();
            assert_eq!(q.len(), 6, "{q}");
            assert!(q.bytes().all(|c| c.is_ascii_digit()), "{q}");
            seen.insert(q);
        }
        assert!(seen.len() > 900, "query codes look far from uniform");
    }
}

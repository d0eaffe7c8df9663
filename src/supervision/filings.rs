//! See `super` for what this file holds.
//!
//! Project filings (备案, plan 二(十一)) and O&M reviews (运维经费评估, 二(十二)), and the
//! departments' monthly progress reports on the plan's key tasks (三(二)).
//!
//! - A department files a construction or O&M project (amount in yuan, justification,
//!   the system it concerns); the operator approves it, returns it with comments, sends
//!   it to expert review or rejects it; a returned filing is resubmitted by the
//!   department. Every step is kept in `filing_events`.
//! - An O&M request for a system the registry holds as flagged (a suspected zombie,
//!   僵尸信息系统) or that runs in the department's own machine room (自建机房; the plan
//!   wants systems in the big-data centre and no separate O&M money for own rooms) is
//!   marked for review: it cannot be approved before an expert review (组织专家或聘请第三方
//!   评估). The rule reads only the registry's `status` and `hosting` columns.
//! - Monthly reports: by the 30th of the following month (the last day of February) each
//!   department reports, per key task it takes part in, a percentage and a note. A report
//!   sent after that day is marked late; until the deadline it may be revised, after it is
//!   final. The operator sees, per month, who reported on time, late, or not at all.
//!
//! The rules are plain functions (tested below); the use cases apply them with the store.
//! The plan's key tasks come from `service-definitions/plan-tasks.toml`, read at start.

use std::path::Path;

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::domain::catalogue::Catalogue;
use crate::domain::form::FieldIssue;
use crate::state::AppState;
use crate::store::sup_filings::{
    FilingChange, FilingContents, FilingEventRow, FilingFilter, FilingRow, ReportRow, SystemFacts,
};
use crate::usecases::{Actor, Error, Result, Text};

// ---- the plan's key tasks -------------------------------------------------------------

/// The file of the plan's key tasks in the definitions directory.
pub const PLAN_TASKS_FILE: &str = "plan-tasks.toml";

/// One key task of the plan (重点工作任务).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PlanTask {
    /// Stable code, used in reports (`t01`).
    pub code: String,
    /// The plan's numbering (`二(一)`).
    pub number: String,
    /// Title.
    pub title: String,
    /// Title in English.
    pub title_en: String,
    /// Lead department as the plan names it.
    pub lead: String,
    /// The same in English.
    pub lead_en: String,
    /// Departments (USCC) that lead it today.
    #[serde(default)]
    pub lead_departments: Vec<String>,
    /// Every department takes part and reports on it.
    #[serde(default)]
    pub all_departments: bool,
    /// The plan's completion date, where it gives one.
    #[serde(default)]
    pub deadline: Option<NaiveDate>,
}

impl PlanTask {
    /// Whether `department` reports on this task.
    pub fn concerns(&self, department: &str) -> bool {
        self.all_departments || self.lead_departments.iter().any(|d| d == department)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanTasksFile {
    #[serde(default)]
    task: Vec<PlanTask>,
}

/// The plan's key tasks, validated against the catalogue's departments.
#[derive(Debug, Clone, Default)]
pub struct PlanTasks {
    tasks: Vec<PlanTask>,
}

impl PlanTasks {
    /// Reads `plan-tasks.toml` from the definitions directory. No file: no tasks (and no
    /// reports can be made). A file with mistakes: every mistake, one per line.
    pub fn load(dir: &Path, catalogue: &Catalogue) -> Result<PlanTasks, Vec<String>> {
        let path = dir.join(PLAN_TASKS_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::warn!(file = %path.display(), "no plan tasks: monthly reports cannot be made");
                return Ok(PlanTasks::default());
            }
            Err(e) => return Err(vec![format!("{PLAN_TASKS_FILE}: cannot read: {e}")]),
        };
        Self::parse(&text, catalogue)
    }

    /// Parses and checks the file's text.
    pub fn parse(text: &str, catalogue: &Catalogue) -> Result<PlanTasks, Vec<String>> {
        let file: PlanTasksFile =
            toml::from_str(text).map_err(|e| vec![format!("{PLAN_TASKS_FILE}: {e}")])?;
        let mut errors = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (i, t) in file.task.iter().enumerate() {
            let at = format!("{PLAN_TASKS_FILE}: task[{i}]");
            if t.code.trim().is_empty() || !seen.insert(t.code.clone()) {
                errors.push(format!("{at}.code: empty or used twice ({:?})", t.code));
            }
            for (k, v) in [
                ("number", &t.number),
                ("title", &t.title),
                ("title_en", &t.title_en),
                ("lead", &t.lead),
                ("lead_en", &t.lead_en),
            ] {
                if v.trim().is_empty() {
                    errors.push(format!("{at}.{k}: must not be empty"));
                }
            }
            for d in &t.lead_departments {
                if catalogue.department(d).is_none() {
                    errors.push(format!(
                        "{at}.lead_departments: {d} is not in departments.toml"
                    ));
                }
            }
            if !t.all_departments && t.lead_departments.is_empty() {
                errors.push(format!(
                    "{at}: no department reports on it (set lead_departments or all_departments)"
                ));
            }
        }
        if errors.is_empty() {
            Ok(PlanTasks { tasks: file.task })
        } else {
            Err(errors)
        }
    }

    /// Every task, in the plan's order.
    pub fn all(&self) -> &[PlanTask] {
        &self.tasks
    }

    /// One task by code.
    pub fn get(&self, code: &str) -> Option<&PlanTask> {
        self.tasks.iter().find(|t| t.code == code)
    }

    /// The tasks a department reports on, in the plan's order.
    pub fn for_department(&self, department: &str) -> Vec<&PlanTask> {
        self.tasks
            .iter()
            .filter(|t| t.concerns(department))
            .collect()
    }
}

// ---- filings: the rules ---------------------------------------------------------------

/// What a filing asks money for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FilingKind {
    /// 建设: a new or changed system.
    Construction,
    /// 运维: running an existing system.
    Om,
}

impl FilingKind {
    /// Both kinds.
    pub const ALL: [FilingKind; 2] = [FilingKind::Construction, FilingKind::Om];

    /// The stored code.
    pub fn code(self) -> &'static str {
        match self {
            FilingKind::Construction => "construction",
            FilingKind::Om => "om",
        }
    }

    /// From the stored code.
    pub fn from_code(s: &str) -> Option<FilingKind> {
        Self::ALL.into_iter().find(|k| k.code() == s)
    }

    /// Chinese and English labels.
    pub fn labels(self) -> (&'static str, &'static str) {
        match self {
            FilingKind::Construction => ("建设项目", "Construction"),
            FilingKind::Om => ("运维经费", "Operation & maintenance"),
        }
    }
}

/// Where a filing is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FilingState {
    /// 待审核: waiting for the operator.
    Submitted,
    /// 退回修改: back with the department, with comments.
    Returned,
    /// 专家评审: with experts (or a third party) for an evaluation.
    ExpertReview,
    /// 已通过 (terminal).
    Approved,
    /// 未通过 (terminal).
    Rejected,
}

impl FilingState {
    /// Every state, in lifecycle order.
    pub const ALL: [FilingState; 5] = [
        FilingState::Submitted,
        FilingState::Returned,
        FilingState::ExpertReview,
        FilingState::Approved,
        FilingState::Rejected,
    ];

    /// The stored code.
    pub fn code(self) -> &'static str {
        match self {
            FilingState::Submitted => "submitted",
            FilingState::Returned => "returned",
            FilingState::ExpertReview => "expert_review",
            FilingState::Approved => "approved",
            FilingState::Rejected => "rejected",
        }
    }

    /// From the stored code.
    pub fn from_code(s: &str) -> Option<FilingState> {
        Self::ALL.into_iter().find(|k| k.code() == s)
    }

    /// Chinese and English labels.
    pub fn labels(self) -> (&'static str, &'static str) {
        match self {
            FilingState::Submitted => ("待审核", "Awaiting review"),
            FilingState::Returned => ("退回修改", "Returned"),
            FilingState::ExpertReview => ("专家评审中", "With experts"),
            FilingState::Approved => ("已通过", "Approved"),
            FilingState::Rejected => ("未通过", "Rejected"),
        }
    }
}

/// What the operator decides on a filing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewAction {
    /// 通过.
    Approve,
    /// 退回修改, with comments.
    Return,
    /// 送专家评审.
    ExpertReview,
    /// 不予通过, with reasons.
    Reject,
}

impl ReviewAction {
    /// Every action.
    pub const ALL: [ReviewAction; 4] = [
        ReviewAction::Approve,
        ReviewAction::Return,
        ReviewAction::ExpertReview,
        ReviewAction::Reject,
    ];

    /// The code in requests.
    pub fn code(self) -> &'static str {
        match self {
            ReviewAction::Approve => "approve",
            ReviewAction::Return => "return",
            ReviewAction::ExpertReview => "expert_review",
            ReviewAction::Reject => "reject",
        }
    }

    /// From the code.
    pub fn from_code(s: &str) -> Option<ReviewAction> {
        Self::ALL.into_iter().find(|k| k.code() == s)
    }

    /// The state it leads to.
    pub fn target(self) -> FilingState {
        match self {
            ReviewAction::Approve => FilingState::Approved,
            ReviewAction::Return => FilingState::Returned,
            ReviewAction::ExpertReview => FilingState::ExpertReview,
            ReviewAction::Reject => FilingState::Rejected,
        }
    }

    /// Whether the reviewer must say why (the department needs to know what to change,
    /// or why it gets nothing).
    pub fn needs_comment(self) -> bool {
        matches!(self, ReviewAction::Return | ReviewAction::Reject)
    }

    /// Chinese and English labels.
    pub fn labels(self) -> (&'static str, &'static str) {
        match self {
            ReviewAction::Approve => ("通过", "Approve"),
            ReviewAction::Return => ("退回修改", "Return with comments"),
            ReviewAction::ExpertReview => ("送专家评审", "Send to expert review"),
            ReviewAction::Reject => ("不予通过", "Reject"),
        }
    }
}

/// Why an O&M request must be reviewed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewReason {
    /// The system is flagged as a suspected zombie system.
    Zombie,
    /// The system runs in the department's own machine room.
    OwnRoom,
}

impl ReviewReason {
    /// The stored code.
    pub fn code(self) -> &'static str {
        match self {
            ReviewReason::Zombie => "zombie",
            ReviewReason::OwnRoom => "own_room",
        }
    }

    /// Chinese and English labels.
    pub fn labels(self) -> (&'static str, &'static str) {
        match self {
            ReviewReason::Zombie => ("疑似“僵尸”信息系统", "Suspected zombie system"),
            ReviewReason::OwnRoom => (
                "部署在自建机房",
                "Runs in the department's own machine room",
            ),
        }
    }

    /// From the stored code.
    pub fn from_code(s: &str) -> Option<ReviewReason> {
        [ReviewReason::Zombie, ReviewReason::OwnRoom]
            .into_iter()
            .find(|r| r.code() == s)
    }
}

/// Why an O&M request for `system` must be reviewed (二(十二)): the registry flags the
/// system as a suspected zombie, or it runs in an own machine room. A construction
/// filing is not marked.
pub fn review_reasons(kind: FilingKind, system: Option<&SystemFacts>) -> Vec<ReviewReason> {
    let (FilingKind::Om, Some(s)) = (kind, system) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if s.status == "flagged" {
        out.push(ReviewReason::Zombie);
    }
    if s.hosting == "own_room" {
        out.push(ReviewReason::OwnRoom);
    }
    out
}

/// Whether a system's registry status allows money to be filed for it: a cleared or
/// merged system gets none.
pub fn system_takes_filings(status: &str) -> bool {
    !matches!(status, "cleared" | "merged")
}

/// The operator's actions a filing in `state` allows. A filing marked for review is
/// approved only after the experts have seen it.
pub fn review_actions(state: FilingState, must_review: bool) -> Vec<ReviewAction> {
    match state {
        FilingState::Submitted if must_review => vec![
            ReviewAction::ExpertReview,
            ReviewAction::Return,
            ReviewAction::Reject,
        ],
        FilingState::Submitted => vec![
            ReviewAction::Approve,
            ReviewAction::Return,
            ReviewAction::ExpertReview,
            ReviewAction::Reject,
        ],
        FilingState::ExpertReview => vec![
            ReviewAction::Approve,
            ReviewAction::Return,
            ReviewAction::Reject,
        ],
        FilingState::Returned | FilingState::Approved | FilingState::Rejected => Vec::new(),
    }
}

/// The state a review leads to, or why it is not allowed now.
pub fn review_step(
    state: FilingState,
    action: ReviewAction,
    must_review: bool,
) -> Result<FilingState, Text> {
    if review_actions(state, must_review).contains(&action) {
        return Ok(action.target());
    }
    let (zh, en) = state.labels();
    Err(
        if action == ReviewAction::Approve && state == FilingState::Submitted {
            Text::new(
                "该运维经费申请须经专家评审后方可通过，请先送专家评审。",
                "This O&M request must go to expert review before it can be approved.",
            )
        } else {
            Text::new(
                format!("备案当前为“{zh}”，不能进行此审核操作。"),
                format!("The filing is {en}; this review action is not possible now."),
            )
        },
    )
}

/// A department resubmits only a returned filing.
pub fn resubmit_step(state: FilingState) -> Result<FilingState, Text> {
    if state == FilingState::Returned {
        Ok(FilingState::Submitted)
    } else {
        let (zh, en) = state.labels();
        Err(Text::new(
            format!("只有被退回的备案可以重新提交，该备案当前为“{zh}”。"),
            format!("Only a returned filing can be resubmitted; this one is {en}."),
        ))
    }
}

/// The largest amount one filing may ask for, in yuan (one hundred billion).
pub const MAX_AMOUNT: i64 = 100_000_000_000;
const MAX_TITLE: usize = 200;
const MAX_TEXT: usize = 5000;
/// The longest reviewer's comment or note.
pub const MAX_COMMENT: usize = 2000;

/// What a department files (or resubmits).
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FilingInput {
    /// `construction` (建设) or `om` (运维).
    pub kind: String,
    /// Project title.
    pub title: String,
    /// Amount in whole yuan, more than 0.
    pub amount: i64,
    /// Why the money is needed.
    pub justification: String,
    /// The department's information system it concerns (required for O&M).
    #[serde(default)]
    pub system_id: Option<Uuid>,
}

fn issue(field: &str, zh: impl Into<String>, en: impl Into<String>) -> FieldIssue {
    FieldIssue {
        field: field.to_owned(),
        zh: zh.into(),
        en: en.into(),
    }
}

/// Checks a filing's fields that need no lookup; the kind when it is well-formed.
pub fn check_input(i: &FilingInput) -> (Option<FilingKind>, Vec<FieldIssue>) {
    let mut issues = Vec::new();
    let kind = FilingKind::from_code(&i.kind);
    if kind.is_none() {
        issues.push(issue(
            "kind",
            "请选择备案类型：建设项目或运维经费。",
            "Choose the kind of filing: construction or O&M.",
        ));
    }
    let title = i.title.trim().chars().count();
    if title == 0 || title > MAX_TITLE {
        issues.push(issue(
            "title",
            format!("请填写项目名称（不超过{MAX_TITLE}字）。"),
            format!("Enter the project title (at most {MAX_TITLE} characters)."),
        ));
    }
    if i.amount <= 0 || i.amount > MAX_AMOUNT {
        issues.push(issue(
            "amount",
            "金额应为大于0的整数元，且不超过1000亿元。",
            "The amount must be whole yuan, more than 0 and at most 100 billion.",
        ));
    }
    let j = i.justification.trim().chars().count();
    if j == 0 || j > MAX_TEXT {
        issues.push(issue(
            "justification",
            format!("请填写申请理由（不超过{MAX_TEXT}字）。"),
            format!("Enter the justification (at most {MAX_TEXT} characters)."),
        ));
    }
    if kind == Some(FilingKind::Om) && i.system_id.is_none() {
        issues.push(issue(
            "system_id",
            "运维经费申请须选择所运维的信息系统。",
            "An O&M request must name the information system it runs.",
        ));
    }
    (kind, issues)
}

// ---- monthly reports: the rules -------------------------------------------------------

/// The first month a report can be made for: the plan asks for reports from December
/// 2017 on, each on the month before.
pub const FIRST_REPORT_MONTH: (i32, u32) = (2017, 11);

/// A month `YYYY-MM` as its first day.
pub fn parse_month(s: &str) -> Option<NaiveDate> {
    let (y, m) = s.split_once('-')?;
    if y.len() != 4 || m.len() != 2 {
        return None;
    }
    NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, 1)
}

/// A month's `YYYY-MM`.
pub fn month_code(first: NaiveDate) -> String {
    first.format("%Y-%m").to_string()
}

/// The first day of the month after `first`'s.
fn next_month(first: NaiveDate) -> NaiveDate {
    let (y, m) = if first.month() == 12 {
        (first.year() + 1, 1)
    } else {
        (first.year(), first.month() + 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1).unwrap_or(first)
}

/// The first day of the month before `first`'s.
pub fn previous_month(first: NaiveDate) -> NaiveDate {
    let (y, m) = if first.month() == 1 {
        (first.year() - 1, 12)
    } else {
        (first.year(), first.month() - 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1).unwrap_or(first)
}

/// The last day a report on `month` is on time: the 30th of the following month, or its
/// last day when it is shorter (February).
pub fn report_deadline(month: NaiveDate) -> NaiveDate {
    let following = next_month(month);
    let last = next_month(following) - Duration::days(1);
    following.with_day(30).unwrap_or(last).min(last)
}

/// The city's date (UTC+8) at an instant.
pub fn china_date(at: DateTime<Utc>) -> NaiveDate {
    let cst = FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset");
    at.with_timezone(&cst).date_naive()
}

/// Whether a report on `month` sent at `at` is late.
pub fn is_late(month: NaiveDate, at: DateTime<Utc>) -> bool {
    china_date(at) > report_deadline(month)
}

/// The latest month a report can be made for on `today`: the month before (a month is
/// reported on once it has ended).
pub fn last_reportable(today: NaiveDate) -> NaiveDate {
    previous_month(today.with_day(1).unwrap_or(today))
}

/// Whether a report on `month` can be made on `today`.
pub fn reportable(month: NaiveDate, today: NaiveDate) -> bool {
    let first = NaiveDate::from_ymd_opt(FIRST_REPORT_MONTH.0, FIRST_REPORT_MONTH.1, 1)
        .expect("a valid month");
    month >= first && month <= last_reportable(today)
}

/// Whether a report already sent for `month` may still be revised on `today`: until the
/// deadline; after it the report is final.
pub fn may_revise(month: NaiveDate, today: NaiveDate) -> bool {
    today <= report_deadline(month)
}

/// Where a department stands on a month's report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportStatus {
    /// Sent by the deadline.
    OnTime,
    /// Sent after the deadline.
    Late,
    /// Not sent; the deadline has not passed.
    Due,
    /// Not sent, and the deadline has passed.
    Missing,
}

impl ReportStatus {
    /// The code.
    pub fn code(self) -> &'static str {
        match self {
            ReportStatus::OnTime => "on_time",
            ReportStatus::Late => "late",
            ReportStatus::Due => "due",
            ReportStatus::Missing => "missing",
        }
    }

    /// Chinese and English labels.
    pub fn labels(self) -> (&'static str, &'static str) {
        match self {
            ReportStatus::OnTime => ("按时报送", "On time"),
            ReportStatus::Late => ("逾期报送", "Late"),
            ReportStatus::Due => ("待报送", "Not yet sent"),
            ReportStatus::Missing => ("逾期未报", "Missing"),
        }
    }
}

/// A department's status for `month` on `today`, from its report's lateness if it sent one.
pub fn report_status(month: NaiveDate, sent_late: Option<bool>, today: NaiveDate) -> ReportStatus {
    match sent_late {
        Some(false) => ReportStatus::OnTime,
        Some(true) => ReportStatus::Late,
        None if today <= report_deadline(month) => ReportStatus::Due,
        None => ReportStatus::Missing,
    }
}

/// One task's progress in a report.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskProgress {
    /// The task's code (`plan-tasks.toml`).
    pub task: String,
    /// Done so far, 0–100.
    pub percent: i64,
    /// What was done, what is in the way.
    #[serde(default)]
    pub note: String,
}

/// Checks a report's entries against the tasks the department reports on: each task
/// exactly once, nothing else, percentages 0–100, notes not too long. Answers the
/// entries in the plan's order.
pub fn check_progress(
    tasks: &[&PlanTask],
    entries: &[TaskProgress],
) -> Result<Vec<TaskProgress>, Vec<FieldIssue>> {
    let mut issues = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if !tasks.iter().any(|t| t.code == e.task) {
            issues.push(issue(
                &format!("tasks[{i}].task"),
                format!("“{}”不是本部门需报送的重点任务。", e.task),
                format!("{:?} is not a key task your department reports on.", e.task),
            ));
        } else if entries[..i].iter().any(|p| p.task == e.task) {
            issues.push(issue(
                &format!("tasks[{i}].task"),
                format!("重点任务“{}”填报了两次。", e.task),
                format!("Key task {:?} is reported twice.", e.task),
            ));
        }
        if !(0..=100).contains(&e.percent) {
            issues.push(issue(
                &format!("tasks[{i}].percent"),
                "完成进度应为0到100之间的整数。",
                "Progress must be a whole number from 0 to 100.",
            ));
        }
        if e.note.trim().chars().count() > MAX_COMMENT {
            issues.push(issue(
                &format!("tasks[{i}].note"),
                format!("进展说明不超过{MAX_COMMENT}字。"),
                format!("The note must be at most {MAX_COMMENT} characters."),
            ));
        }
    }
    for t in tasks {
        if !entries.iter().any(|e| e.task == t.code) {
            issues.push(issue(
                &format!("task.{}", t.code),
                format!("请填报重点任务“{}”的进展。", t.title),
                format!("Report progress on key task {:?}.", t.title_en),
            ));
        }
    }
    if !issues.is_empty() {
        return Err(issues);
    }
    Ok(tasks
        .iter()
        .filter_map(|t| entries.iter().find(|e| e.task == t.code))
        .map(|e| TaskProgress {
            task: e.task.clone(),
            percent: e.percent,
            note: e.note.trim().to_owned(),
        })
        .collect())
}

// ---- use cases ------------------------------------------------------------------------

fn filing_not_found() -> Error {
    Error::NotFound(Text::new("没有这个备案。", "There is no such filing."))
}

fn department_of(actor: &Actor) -> Option<&str> {
    match actor {
        Actor::Officer { department, .. } => Some(department),
        _ => None,
    }
}

/// A filing as its reader may see it: an officer only their department's, an operator
/// any. Another department's filing is not found.
pub async fn visible_filing(
    app: &AppState,
    actor: &Actor,
    id: Uuid,
) -> Result<(FilingRow, Vec<FilingEventRow>)> {
    let f = app.store.filing(id).await?.ok_or_else(filing_not_found)?;
    match actor {
        Actor::Operator { .. } => {}
        Actor::Officer { department, .. } if *department == f.department => {}
        _ => return Err(filing_not_found()),
    }
    let events = app.store.filing_events(id).await?;
    Ok((f, events))
}

/// Checks a filing's input and its system for a department; answers the contents to
/// store.
async fn contents_for(
    app: &AppState,
    department: &str,
    input: &FilingInput,
) -> Result<(FilingKind, FilingContents)> {
    let (kind, mut issues) = check_input(input);
    let mut system = None;
    if let Some(id) = input.system_id {
        match app.store.system_facts(id).await? {
            Some(s) if s.department == department && system_takes_filings(&s.status) => {
                system = Some(s)
            }
            Some(s) if s.department == department => issues.push(issue(
                "system_id",
                "该信息系统已清理或已整合，不能再为其备案。",
                "This system has been cleared or merged; nothing more can be filed for it.",
            )),
            _ => issues.push(issue(
                "system_id",
                "本部门没有这个信息系统。",
                "Your department has no such information system.",
            )),
        }
    }
    let Some(kind) = kind.filter(|_| issues.is_empty()) else {
        return Err(Error::Invalid(issues));
    };
    Ok((
        kind,
        FilingContents {
            title: input.title.trim().to_owned(),
            amount: input.amount,
            justification: input.justification.trim().to_owned(),
            system_id: system.as_ref().map(|s| s.id),
            review_reasons: review_reasons(kind, system.as_ref())
                .into_iter()
                .map(|r| r.code().to_owned())
                .collect(),
        },
    ))
}

fn officer_only() -> Error {
    Error::NotAllowed {
        message: Text::new(
            "只有部门工作人员可以为本部门备案。",
            "Only a department officer can file for their department.",
        ),
        allowed: Vec::new(),
    }
}

/// A department officer files a project (备案); it waits for the operator's review.
pub async fn file(
    app: &AppState,
    actor: &Actor,
    input: &FilingInput,
    now: DateTime<Utc>,
) -> Result<FilingRow> {
    let department = department_of(actor).ok_or_else(officer_only)?.to_owned();
    let (kind, c) = contents_for(app, &department, input).await?;
    let id = Uuid::now_v7();
    let row = FilingRow {
        id,
        department,
        system_id: c.system_id,
        system_name: None,
        kind: kind.code().to_owned(),
        title: c.title,
        amount: c.amount,
        justification: c.justification,
        state: FilingState::Submitted.code().to_owned(),
        review_reasons: c.review_reasons,
        created_by: actor.id(),
        created_at: now,
        updated_at: now,
    };
    let event = FilingEventRow {
        filing_id: id,
        seq: 1,
        action: "submitted".into(),
        comment: String::new(),
        actor: actor.id(),
        actor_name: actor.name().to_owned(),
        at: now,
    };
    app.store.insert_filing(&row, &event).await?;
    tracing::info!(filing = %id, kind = kind.code(), marked = !row.review_reasons.is_empty(), "filing submitted");
    app.store
        .filing(id)
        .await?
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("a filing just stored is gone")))
}

fn changed_meanwhile() -> Error {
    Error::Conflict {
        message: Text::new(
            "备案已被他人同时处理，请刷新后查看。",
            "The filing was changed by someone else at the same moment; reload it.",
        ),
        allowed: Vec::new(),
    }
}

fn check_comment(comment: &str, required: bool) -> Result<String> {
    let c = comment.trim();
    if (required && c.is_empty()) || c.chars().count() > MAX_COMMENT {
        return Err(Error::Invalid(vec![issue(
            "comment",
            format!("请填写审核意见（不超过{MAX_COMMENT}字）。"),
            format!("Enter your comments (at most {MAX_COMMENT} characters)."),
        )]));
    }
    Ok(c.to_owned())
}

/// A department resubmits its returned filing, changed as the comments asked.
pub async fn resubmit(
    app: &AppState,
    actor: &Actor,
    id: Uuid,
    input: &FilingInput,
    note: &str,
    now: DateTime<Utc>,
) -> Result<FilingRow> {
    let department = department_of(actor).ok_or_else(officer_only)?.to_owned();
    let (f, _) = visible_filing(app, actor, id).await?;
    let state = FilingState::from_code(&f.state)
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("filing {id} in unknown state")))?;
    let to = resubmit_step(state).map_err(|message| Error::Conflict {
        message,
        allowed: Vec::new(),
    })?;
    let note = check_comment(note, false)?;
    let (kind, c) = contents_for(app, &department, input).await?;
    if kind.code() != f.kind {
        return Err(Error::Invalid(vec![issue(
            "kind",
            "重新提交时不能更改备案类型；请另行备案。",
            "The kind of a filing cannot change on resubmission; file a new one instead.",
        )]));
    }
    let change = FilingChange {
        id,
        from: state.code().into(),
        to: to.code().into(),
        contents: Some(c),
        event: FilingEventRow {
            filing_id: id,
            seq: 0,
            action: "resubmitted".into(),
            comment: note,
            actor: actor.id(),
            actor_name: actor.name().to_owned(),
            at: now,
        },
    };
    if !app.store.change_filing(&change).await? {
        return Err(changed_meanwhile());
    }
    tracing::info!(filing = %id, "filing resubmitted");
    Ok(visible_filing(app, actor, id).await?.0)
}

/// The operator reviews a filing: approve, return with comments, send to expert review,
/// or reject.
pub async fn review(
    app: &AppState,
    actor: &Actor,
    id: Uuid,
    action: ReviewAction,
    comment: &str,
    now: DateTime<Utc>,
) -> Result<FilingRow> {
    if !matches!(actor, Actor::Operator { .. }) {
        return Err(Error::NotAllowed {
            message: Text::new(
                "只有系统运维人员可以审核备案。",
                "Only an operator can review filings.",
            ),
            allowed: Vec::new(),
        });
    }
    let (f, _) = visible_filing(app, actor, id).await?;
    let state = FilingState::from_code(&f.state)
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("filing {id} in unknown state")))?;
    let to = review_step(state, action, !f.review_reasons.is_empty()).map_err(|message| {
        Error::Conflict {
            message,
            allowed: Vec::new(),
        }
    })?;
    let comment = check_comment(comment, action.needs_comment())?;
    let change = FilingChange {
        id,
        from: state.code().into(),
        to: to.code().into(),
        contents: None,
        event: FilingEventRow {
            filing_id: id,
            seq: 0,
            action: to.code().into(),
            comment,
            actor: actor.id(),
            actor_name: actor.name().to_owned(),
            at: now,
        },
    };
    if !app.store.change_filing(&change).await? {
        return Err(changed_meanwhile());
    }
    crate::audit::action(
        app,
        &crate::audit::Who::of(actor),
        "filing.review",
        format!("filing:{id}"),
        &id.to_string(),
        serde_json::json!({ "from": change.from, "to": change.to }),
    )
    .await?;
    tracing::info!(filing = %id, action = action.code(), "filing reviewed");
    Ok(visible_filing(app, actor, id).await?.0)
}

/// Filings the reader may see: an officer's department's, or (operator) everyone's
/// with the filter's department.
pub async fn list(
    app: &AppState,
    actor: &Actor,
    mut filter: FilingFilter,
) -> Result<Vec<FilingRow>> {
    match actor {
        Actor::Operator { .. } => {}
        Actor::Officer { department, .. } => filter.department = Some(department.clone()),
        _ => return Err(officer_only()),
    }
    Ok(app.store.list_filings(&filter).await?)
}

fn bad_month(month: &str) -> Error {
    Error::Malformed(Text::new(
        format!("月份“{month}”应写作 YYYY-MM。"),
        format!("The month {month:?} must be written YYYY-MM."),
    ))
}

/// A month from its `YYYY-MM` text, or a 400.
pub fn month_of(month: &str) -> Result<NaiveDate> {
    parse_month(month).ok_or_else(|| bad_month(month))
}

/// What a department sent or revised.
#[derive(Debug, Clone)]
pub struct Reported {
    /// The stored report.
    pub report: ReportRow,
    /// A first report (not a revision).
    pub created: bool,
}

/// A department officer reports (or, before the deadline, revises) the progress on
/// the plan's tasks for a month that has ended.
pub async fn submit_report(
    app: &AppState,
    actor: &Actor,
    month: &str,
    entries: &[TaskProgress],
    now: DateTime<Utc>,
) -> Result<Reported> {
    let department = department_of(actor).ok_or_else(officer_only)?.to_owned();
    let first = month_of(month)?;
    let today = china_date(now);
    if !reportable(first, today) {
        return Err(Error::Conflict {
            message: Text::new(
                format!(
                    "只能报送{}年{}月至上个月（含）已结束月份的进展。",
                    FIRST_REPORT_MONTH.0, FIRST_REPORT_MONTH.1
                ),
                format!(
                    "Progress can be reported for months from {}-{:02} to last month, once they have ended.",
                    FIRST_REPORT_MONTH.0, FIRST_REPORT_MONTH.1
                ),
            ),
            allowed: Vec::new(),
        });
    }
    let tasks = app.plan_tasks.for_department(&department);
    let entries = check_progress(&tasks, entries).map_err(Error::Invalid)?;
    let row = ReportRow {
        department: department.clone(),
        month: month_code(first),
        tasks: serde_json::to_value(&entries).unwrap_or(Value::Null),
        submitted_by: actor.id(),
        submitted_name: actor.name().to_owned(),
        submitted_at: now,
        late: is_late(first, now),
    };
    if app.store.insert_report(&row).await? {
        tracing::info!(month = %row.month, late = row.late, "progress report sent");
        return Ok(Reported {
            report: row,
            created: true,
        });
    }
    if !may_revise(first, today) {
        let d = report_deadline(first);
        return Err(Error::Conflict {
            message: Text::new(
                format!("该月进展已报送，报送截止日（{d}）已过，不能再修改。"),
                format!(
                    "This month's report was sent and its deadline ({d}) has passed; it can no longer be changed."
                ),
            ),
            allowed: Vec::new(),
        });
    }
    // a revision before the deadline: on time, as the first one was
    if !app.store.replace_report(&row).await? {
        return Err(Error::Internal(anyhow::anyhow!(
            "a report just found is gone"
        )));
    }
    tracing::info!(month = %row.month, "progress report revised");
    Ok(Reported {
        report: row,
        created: false,
    })
}

/// One department's line in a month's overview.
#[derive(Debug, Clone, Serialize)]
pub struct DepartmentMonth {
    /// The department (USCC).
    pub department: String,
    /// Where it stands.
    pub status: ReportStatus,
    /// Its report, if sent.
    pub report: Option<ReportRow>,
    /// The mean percentage over its tasks, if sent.
    pub mean_percent: Option<f64>,
}

/// The mean percentage of a report's tasks.
pub fn mean_percent(tasks: &Value) -> Option<f64> {
    let list = tasks.as_array()?;
    if list.is_empty() {
        return None;
    }
    let sum: f64 = list.iter().filter_map(|t| t["percent"].as_f64()).sum();
    Some((sum / list.len() as f64 * 10.0).round() / 10.0)
}

/// Every department of the catalogue for a month: who reported on time, late, or not
/// at all, in the catalogue's order.
pub async fn month_overview(
    app: &AppState,
    month: NaiveDate,
    today: NaiveDate,
) -> Result<Vec<DepartmentMonth>> {
    let reports = app.store.reports_for_month(&month_code(month)).await?;
    Ok(app
        .catalogue
        .departments()
        .iter()
        .map(|d| {
            let r = reports.iter().find(|r| r.department == d.uscc).cloned();
            DepartmentMonth {
                department: d.uscc.clone(),
                status: report_status(month, r.as_ref().map(|r| r.late), today),
                mean_percent: r.as_ref().and_then(|r| mean_percent(&r.tasks)),
                report: r,
            }
        })
        .collect())
}

/// The months a department is asked about on `today`, newest first: the last `n` ended
/// months, each with its status and report.
pub async fn department_months(
    app: &AppState,
    department: &str,
    today: NaiveDate,
    n: usize,
) -> Result<Vec<(NaiveDate, ReportStatus, Option<ReportRow>)>> {
    let reports = app
        .store
        .department_reports(department, n as i64 + 12)
        .await?;
    let mut out = Vec::new();
    let mut m = last_reportable(today);
    for _ in 0..n {
        if !reportable(m, today) {
            break;
        }
        let r = reports.iter().find(|r| r.month == month_code(m)).cloned();
        out.push((m, report_status(m, r.as_ref().map(|r| r.late), today), r));
        m = previous_month(m);
    }
    Ok(out)
}

// ---- demo -----------------------------------------------------------------------------

/// The demo's filings and reports (idempotent: filings carry fixed ids, and a report is
/// only added where its month has none). Systems are looked up by name in the registry
/// (seeded by the systems part); where none is found, the filing names no system.
pub async fn seed_demo(app: &AppState, issuer: &str) -> anyhow::Result<()> {
    demo::seed(app, issuer).await
}

mod demo {
    use super::*;
    use crate::auth::identity::{self, AccountKind, Audience, Identity, Role};
    use sha2::{Digest, Sha256};

    const MARKET: &str = "11150700MB1530001X";
    const POLICE: &str = "11150700MB15300021";
    const HRSS: &str = "11150700MB15300034";
    const HEALTH: &str = "11150700MB15300047";
    const CULTURE: &str = "11150700MB1530006D";
    const MEDICAL: &str = "11150700MB1530007G";
    const CIVIL: &str = "11150700MB1530008K";
    const NATURAL: &str = "11150700MB1530005A";

    /// The zombie system the systems part seeds.
    const ZOMBIE: &str = "旧版档案查询系统";

    fn derived_id(key: &str) -> Uuid {
        let hash = Sha256::digest(format!("onewindow-demo-filings/{key}").as_bytes());
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&hash[..16]);
        uuid::Builder::from_custom_bytes(bytes).into_uuid()
    }

    async fn staff(
        app: &AppState,
        issuer: &str,
        persona: Option<&str>,
        department: Option<&str>,
    ) -> anyhow::Result<Actor> {
        let who = match persona.and_then(crate::devidp::personas::find_persona) {
            Some(p) => {
                let mut claims = p.claims();
                claims.insert("sub".into(), Value::from(p.id));
                identity::identity_from_claims(issuer, Audience::Staff, &claims, &app.claim_names)
                    .map_err(|e| anyhow::anyhow!("persona {}: {e}", p.id))?
            }
            None => {
                let d = department.unwrap_or_default();
                let short = app
                    .catalogue
                    .department(d)
                    .map(|x| x.short_name.clone())
                    .unwrap_or_else(|| d.to_owned());
                Identity {
                    issuer: crate::demo_seed::SEED_ISSUER.to_owned(),
                    subject: format!("officer-{d}"),
                    kind: AccountKind::Staff,
                    name: format!("{short}审核员（演示）"),
                    id_number: None,
                    phone: None,
                    email: None,
                    assurance: 2,
                    enterprise: None,
                    roles: vec![Role::DepartmentOfficer {
                        department: d.to_owned(),
                    }],
                }
            }
        };
        let account = app.store.upsert_account(&who, Utc::now()).await?;
        Ok(
            match who.roles.iter().find_map(|r| match r {
                Role::DepartmentOfficer { department } => Some(department.clone()),
                _ => None,
            }) {
                Some(department) => Actor::Officer {
                    account,
                    name: who.name,
                    department,
                },
                None => Actor::Operator {
                    account,
                    name: who.name,
                },
            },
        )
    }

    async fn officer(app: &AppState, issuer: &str, department: &str) -> anyhow::Result<Actor> {
        let persona = crate::devidp::personas::personas()
            .iter()
            .find(|p| p.department == Some(department))
            .map(|p| p.id);
        staff(app, issuer, persona, Some(department)).await
    }

    /// One planned filing: who, what, and the reviews it went through.
    struct Planned {
        key: &'static str,
        department: &'static str,
        kind: FilingKind,
        title: &'static str,
        amount: i64,
        justification: &'static str,
        /// The system by name; or `None`, or `Some("")` for the department's first
        /// own-room system.
        system: Option<&'static str>,
        days_ago: i64,
        steps: &'static [(&'static str, &'static str)],
    }

    fn plan() -> Vec<Planned> {
        vec![
            Planned {
                key: "market-upgrade",
                department: MARKET,
                kind: FilingKind::Construction,
                title: "企业登记全程电子化系统升级改造",
                amount: 1_850_000,
                justification: "对接自治区企业登记系统与市政务信息共享交换平台，实现营业执照电子证照实时共享，减少企业重复提交材料。",
                system: None,
                days_ago: 3,
                steps: &[],
            },
            Planned {
                key: "hrss-om",
                department: HRSS,
                kind: FilingKind::Om,
                title: "社会保障卡服务系统2027年度运维",
                amount: 620_000,
                justification: "系统全年7×24小时运行，承担社保卡申领、挂失和补换业务，需保障数据库、中间件和接口服务的日常运维。",
                system: Some("*"),
                days_ago: 12,
                steps: &[(
                    "return",
                    "请补充近三年运维合同和费用明细，并说明运维费用高于同类系统的原因。",
                )],
            },
            Planned {
                key: "zombie-om",
                department: "",
                kind: FilingKind::Om,
                title: "旧版档案查询系统年度运维",
                amount: 180_000,
                justification: "维持旧版档案查询系统运行，保障历史档案查询。",
                system: Some(ZOMBIE),
                days_ago: 20,
                steps: &[(
                    "expert_review",
                    "系统近期无交换记录，已被标记为疑似“僵尸”系统，送专家评估是否继续安排运维经费。",
                )],
            },
            Planned {
                key: "police-construction",
                department: POLICE,
                kind: FilingKind::Construction,
                title: "居住证业务系统接入政务服务平台",
                amount: 960_000,
                justification: "将居住证申领业务接入一体化网上政务服务平台，实现网上申报、网上查询和电子证照共享。",
                system: None,
                days_ago: 40,
                steps: &[("approve", "符合整合共享要求，同意备案。")],
            },
            Planned {
                key: "health-om",
                department: HEALTH,
                kind: FilingKind::Om,
                title: "公共场所卫生许可系统运维",
                amount: 240_000,
                justification: "保障卫生许可审批系统与数据共享交换平台接口稳定运行，按季度更新许可数据。",
                system: Some("*"),
                days_ago: 30,
                steps: &[
                    ("return", "请说明该系统是否已迁移至海拉尔大数据中心。"),
                    (
                        "resubmit",
                        "已补充说明：系统计划于明年迁移至大数据中心，本年度运维费用按迁移前标准测算。",
                    ),
                    (
                        "approve",
                        "同意备案，迁移完成后运维经费按大数据中心标准核定。",
                    ),
                ],
            },
            Planned {
                key: "culture-construction",
                department: CULTURE,
                kind: FilingKind::Construction,
                title: "独立建设旅游数据中心机房",
                amount: 3_200_000,
                justification: "建设本局独立机房，集中存放旅游统计数据和监控视频。",
                system: None,
                days_ago: 25,
                steps: &[(
                    "reject",
                    "方案要求严格控制各部门独立机房建设，相关系统应部署在海拉尔大数据中心，不予通过。",
                )],
            },
            Planned {
                key: "civil-construction",
                department: CIVIL,
                kind: FilingKind::Construction,
                title: "婚姻登记系统与自治区平台对接改造",
                amount: 380_000,
                justification: "按自治区要求将婚姻登记数据实时汇聚至自治区平台，并向市政务信息共享交换平台提供婚姻状况核验接口。",
                system: None,
                days_ago: 8,
                steps: &[(
                    "return",
                    "请补充与自治区婚姻登记系统的接口方案，以及共享数据项清单。",
                )],
            },
            Planned {
                key: "natural-construction",
                department: NATURAL,
                kind: FilingKind::Construction,
                title: "不动产登记“一窗受理”平台建设",
                amount: 5_600_000,
                justification: "整合不动产登记、交易和税务窗口，建设“一窗受理、集成服务”平台，数据接入市政务信息共享交换平台。",
                system: None,
                days_ago: 15,
                steps: &[(
                    "expert_review",
                    "投资额较大，送专家评审技术方案和投资估算。",
                )],
            },
            Planned {
                key: "medical-om",
                department: MEDICAL,
                kind: FilingKind::Om,
                title: "医保结算系统机房运维",
                amount: 450_000,
                justification: "医保结算系统部署在本局机房，需保障机房空调、供电和网络设备运维。",
                system: Some(""),
                days_ago: 5,
                steps: &[],
            },
        ]
    }

    /// The system a planned filing names: a system by name (any department, the
    /// filing's department follows it), `*` the department's first system, `""` its
    /// first own-room system.
    async fn system_for(
        app: &AppState,
        department: &str,
        want: Option<&str>,
    ) -> anyhow::Result<Option<SystemFacts>> {
        let take = |s: &SystemFacts| system_takes_filings(&s.status);
        Ok(match want {
            None => None,
            Some("*") => app
                .store
                .department_systems(department)
                .await?
                .into_iter()
                .find(take),
            Some("") => app
                .store
                .department_systems(department)
                .await?
                .into_iter()
                .find(|s| take(s) && s.hosting == "own_room"),
            Some(name) => app.store.systems_named(name).await?.into_iter().find(take),
        })
    }

    pub(super) async fn seed(app: &AppState, issuer: &str) -> anyhow::Result<()> {
        let operator = staff(app, issuer, Some("operator-wu"), None).await?;
        let now = Utc::now();
        let mut failed = Vec::new();
        for p in plan() {
            if let Err(e) = seed_filing(app, issuer, &operator, &p, now).await {
                failed.push(format!("{}: {e:#}", p.key));
            }
        }
        seed_reports(app, issuer, now).await?;
        if failed.is_empty() {
            Ok(())
        } else {
            anyhow::bail!("demo filings not made: {}", failed.join("; "))
        }
    }

    async fn seed_filing(
        app: &AppState,
        issuer: &str,
        operator: &Actor,
        p: &Planned,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        {
            let id = derived_id(p.key);
            if app.store.filing(id).await?.is_some() {
                return Ok(());
            }
            let system = system_for(app, p.department, p.system).await?;
            let department = match (&system, p.department) {
                (Some(s), _) => s.department.clone(),
                (None, "") => NATURAL.to_owned(),
                (None, d) => d.to_owned(),
            };
            // an O&M request names its system: none found in the registry, none made
            if p.kind == FilingKind::Om && system.is_none() {
                return Ok(());
            }
            let by = officer(app, issuer, &department).await?;
            let start = now - Duration::days(p.days_ago);
            let reasons: Vec<String> = review_reasons(p.kind, system.as_ref())
                .into_iter()
                .map(|r| r.code().to_owned())
                .collect();
            let row = FilingRow {
                id,
                department: department.clone(),
                system_id: system.as_ref().map(|s| s.id),
                system_name: None,
                kind: p.kind.code().into(),
                title: p.title.into(),
                amount: p.amount,
                justification: p.justification.into(),
                state: FilingState::Submitted.code().into(),
                review_reasons: reasons.clone(),
                created_by: by.id(),
                created_at: start,
                updated_at: start,
            };
            let event = |action: &str, comment: &str, who: &Actor, at| FilingEventRow {
                filing_id: id,
                seq: 0,
                action: action.into(),
                comment: comment.into(),
                actor: who.id(),
                actor_name: who.name().to_owned(),
                at,
            };
            app.store
                .insert_filing(&row, &event("submitted", "", &by, start))
                .await?;
            let mut state = FilingState::Submitted;
            for (i, (action, comment)) in p.steps.iter().enumerate() {
                let at = start + Duration::days(i as i64 + 1);
                let (to, who, action_code, contents) = if *action == "resubmit" {
                    let c = FilingContents {
                        title: row.title.clone(),
                        amount: row.amount,
                        justification: row.justification.clone(),
                        system_id: row.system_id,
                        review_reasons: reasons.clone(),
                    };
                    (FilingState::Submitted, &by, "resubmitted", Some(c))
                } else {
                    let a = ReviewAction::from_code(action)
                        .ok_or_else(|| anyhow::anyhow!("demo step {action}"))?;
                    if a == ReviewAction::Approve
                        && state == FilingState::Submitted
                        && !reasons.is_empty()
                    {
                        // the registry marks this system: experts first, as the rule wants
                        let experts = FilingChange {
                            id,
                            from: state.code().into(),
                            to: FilingState::ExpertReview.code().into(),
                            contents: None,
                            event: event(
                                "expert_review",
                                "该系统须经专家评审，送第三方评估运维经费。",
                                operator,
                                at - Duration::hours(12),
                            ),
                        };
                        app.store.change_filing(&experts).await?;
                        state = FilingState::ExpertReview;
                    }
                    let to = review_step(state, a, !reasons.is_empty())
                        .map_err(|t| anyhow::anyhow!("demo filing {}: {}", p.key, t.en))?;
                    (to, operator, to.code(), None)
                };
                let change = FilingChange {
                    id,
                    from: state.code().into(),
                    to: to.code().into(),
                    contents,
                    event: event(action_code, comment, who, at),
                };
                app.store.change_filing(&change).await?;
                state = to;
            }
        }
        Ok(())
    }

    /// Three months of reports: all on time three months back; all sent two months
    /// back, one department (民政局) late; last month, some sent and four still due.
    async fn seed_reports(app: &AppState, issuer: &str, now: DateTime<Utc>) -> anyhow::Result<()> {
        let today = china_date(now);
        let m1 = last_reportable(today);
        let m2 = previous_month(m1);
        let m3 = previous_month(m2);
        let cst = FixedOffset::east_opt(8 * 3600).expect("UTC+8");
        let at_day = |d: NaiveDate, hour: u32| -> DateTime<Utc> {
            d.and_hms_opt(hour, 0, 0)
                .and_then(|t| t.and_local_timezone(cst).single())
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or(now)
        };
        let not_yet = [MARKET, POLICE, MEDICAL, CIVIL];
        for (i, d) in app.catalogue.departments().iter().enumerate() {
            let by = officer(app, issuer, &d.uscc).await?;
            let tasks = app.plan_tasks.for_department(&d.uscc);
            for (back, month) in [(3i64, m3), (2, m2), (1, m1)] {
                let deadline = report_deadline(month);
                let sent = match back {
                    1 if not_yet.contains(&d.uscc.as_str()) => continue,
                    1 => {
                        // in the current month, before now
                        let day = next_month(month) + Duration::days(i as i64 % 5);
                        at_day(day, 10).min(now - Duration::minutes(5 + i as i64))
                    }
                    2 if d.uscc == CIVIL => at_day(deadline + Duration::days(3), 16),
                    _ => at_day(deadline - Duration::days(3 + i as i64 % 7), 10),
                };
                let entries: Vec<TaskProgress> = tasks
                    .iter()
                    .enumerate()
                    .map(|(k, t)| {
                        let base = 40 + ((k as i64 * 13 + i as i64 * 7) % 40);
                        let percent = (base + 10 * (4 - back)).min(100);
                        TaskProgress {
                            task: t.code.clone(),
                            percent,
                            note: if percent >= 100 {
                                "已完成。".into()
                            } else {
                                format!("按计划推进，本月完成进度{percent}%。")
                            },
                        }
                    })
                    .collect();
                let row = ReportRow {
                    department: d.uscc.clone(),
                    month: month_code(month),
                    tasks: json!(entries),
                    submitted_by: by.id(),
                    submitted_name: by.name().to_owned(),
                    submitted_at: sent,
                    late: is_late(month, sent),
                };
                app.store.insert_report(&row).await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("date")
    }

    fn system(status: &str, hosting: &str) -> SystemFacts {
        SystemFacts {
            id: Uuid::nil(),
            department: "D".into(),
            name: "S".into(),
            status: status.into(),
            hosting: hosting.into(),
        }
    }

    #[test]
    fn the_deadline_is_the_30th_of_the_following_month_or_the_last_day_of_february() {
        assert_eq!(report_deadline(d(2026, 10, 1)), d(2026, 11, 30));
        assert_eq!(report_deadline(d(2026, 11, 1)), d(2026, 12, 30));
        assert_eq!(report_deadline(d(2026, 12, 1)), d(2027, 1, 30));
        assert_eq!(report_deadline(d(2027, 1, 1)), d(2027, 2, 28));
        assert_eq!(report_deadline(d(2028, 1, 1)), d(2028, 2, 29));
        assert_eq!(report_deadline(d(2026, 2, 1)), d(2026, 3, 30));
    }

    #[test]
    fn lateness_is_decided_on_the_citys_date() {
        let month = d(2026, 10, 1);
        // 2026-11-30 23:30 in the city is still on time; 00:30 on 12-01 is late
        let on_time = "2026-11-30T15:30:00Z".parse().expect("time");
        let late = "2026-11-30T16:30:00Z".parse().expect("time");
        assert!(!is_late(month, on_time));
        assert!(is_late(month, late));
        let feb = d(2027, 1, 1);
        assert!(!is_late(feb, "2027-02-28T10:00:00Z".parse().expect("time")));
        assert!(is_late(feb, "2027-03-01T10:00:00Z".parse().expect("time")));
    }

    #[test]
    fn only_ended_months_are_reported_and_revised_until_the_deadline() {
        let today = d(2026, 12, 6);
        assert_eq!(last_reportable(today), d(2026, 11, 1));
        assert!(reportable(d(2026, 11, 1), today));
        assert!(!reportable(d(2026, 12, 1), today));
        assert!(!reportable(d(2017, 10, 1), today));
        assert!(reportable(d(2017, 11, 1), today));
        assert!(may_revise(d(2026, 11, 1), today));
        assert!(may_revise(d(2026, 11, 1), d(2026, 12, 30)));
        assert!(!may_revise(d(2026, 11, 1), d(2026, 12, 31)));
        assert_eq!(last_reportable(d(2027, 1, 3)), d(2026, 12, 1));
    }

    #[test]
    fn a_months_status_is_on_time_late_due_or_missing() {
        let m = d(2026, 10, 1);
        let before = d(2026, 11, 30);
        let after = d(2026, 12, 1);
        assert_eq!(report_status(m, Some(false), after), ReportStatus::OnTime);
        assert_eq!(report_status(m, Some(true), after), ReportStatus::Late);
        assert_eq!(report_status(m, None, before), ReportStatus::Due);
        assert_eq!(report_status(m, None, after), ReportStatus::Missing);
    }

    #[test]
    fn months_are_read_as_yyyy_mm_only() {
        assert_eq!(parse_month("2026-02"), Some(d(2026, 2, 1)));
        for bad in ["2026-2", "2026-13", "26-02", "2026/02", "", "2026-02-01"] {
            assert_eq!(parse_month(bad), None, "{bad}");
        }
        assert_eq!(month_code(d(2026, 2, 1)), "2026-02");
        assert_eq!(previous_month(d(2026, 1, 1)), d(2025, 12, 1));
    }

    #[test]
    fn an_om_request_for_a_flagged_or_own_room_system_is_marked() {
        assert_eq!(
            review_reasons(FilingKind::Om, Some(&system("flagged", "own_room"))),
            vec![ReviewReason::Zombie, ReviewReason::OwnRoom]
        );
        assert_eq!(
            review_reasons(FilingKind::Om, Some(&system("active", "own_room"))),
            vec![ReviewReason::OwnRoom]
        );
        assert_eq!(
            review_reasons(FilingKind::Om, Some(&system("flagged", "data_centre"))),
            vec![ReviewReason::Zombie]
        );
        assert!(review_reasons(FilingKind::Om, Some(&system("kept", "data_centre"))).is_empty());
        assert!(
            review_reasons(
                FilingKind::Construction,
                Some(&system("flagged", "own_room"))
            )
            .is_empty()
        );
        assert!(review_reasons(FilingKind::Om, None).is_empty());
        assert!(!system_takes_filings("cleared"));
        assert!(!system_takes_filings("merged"));
        assert!(system_takes_filings("flagged"));
    }

    #[test]
    fn reviews_follow_the_state_and_a_marked_filing_sees_experts_first() {
        use FilingState::*;
        use ReviewAction::*;
        assert_eq!(review_step(Submitted, Approve, false), Ok(Approved));
        assert!(review_step(Submitted, Approve, true).is_err());
        assert_eq!(
            review_step(Submitted, ReviewAction::ExpertReview, true),
            Ok(FilingState::ExpertReview)
        );
        assert_eq!(
            review_step(FilingState::ExpertReview, Approve, true),
            Ok(Approved)
        );
        assert_eq!(review_step(Submitted, Return, false), Ok(Returned));
        assert_eq!(
            review_step(FilingState::ExpertReview, Reject, false),
            Ok(Rejected)
        );
        assert!(review_step(FilingState::ExpertReview, ReviewAction::ExpertReview, false).is_err());
        for end in [Approved, Rejected, Returned] {
            for a in ReviewAction::ALL {
                assert!(review_step(end, a, false).is_err(), "{end:?} {a:?}");
            }
        }
        assert_eq!(resubmit_step(Returned), Ok(Submitted));
        for s in [Submitted, FilingState::ExpertReview, Approved, Rejected] {
            assert!(resubmit_step(s).is_err());
        }
        assert!(Return.needs_comment() && Reject.needs_comment());
        assert!(!Approve.needs_comment() && !ReviewAction::ExpertReview.needs_comment());
    }

    #[test]
    fn a_filing_needs_its_fields_and_om_needs_a_system() {
        let ok = FilingInput {
            kind: "construction".into(),
            title: "x".into(),
            amount: 1,
            justification: "y".into(),
            system_id: None,
        };
        assert_eq!(check_input(&ok), (Some(FilingKind::Construction), vec![]));
        let bad = FilingInput {
            kind: "om".into(),
            title: " ".into(),
            amount: 0,
            justification: String::new(),
            system_id: None,
        };
        let (_, issues) = check_input(&bad);
        let fields: Vec<&str> = issues.iter().map(|i| i.field.as_str()).collect();
        assert_eq!(fields, ["title", "amount", "justification", "system_id"]);
        let (kind, issues) = check_input(&FilingInput {
            kind: "other".into(),
            amount: MAX_AMOUNT + 1,
            ..ok.clone()
        });
        assert_eq!(kind, None);
        assert_eq!(issues.len(), 2);
    }

    fn task(code: &str, all: bool, lead: &[&str]) -> PlanTask {
        PlanTask {
            code: code.into(),
            number: code.into(),
            title: code.into(),
            title_en: code.into(),
            lead: "x".into(),
            lead_en: "x".into(),
            lead_departments: lead.iter().map(|s| s.to_string()).collect(),
            all_departments: all,
            deadline: None,
        }
    }

    #[test]
    fn a_report_covers_each_of_the_departments_tasks_once() {
        let a = task("a", true, &[]);
        let b = task("b", false, &["D"]);
        let c = task("c", false, &["E"]);
        assert!(b.concerns("D") && !c.concerns("D") && a.concerns("Z"));
        let tasks = vec![&a, &b];
        let p = |t: &str, percent| TaskProgress {
            task: t.into(),
            percent,
            note: " n ".into(),
        };
        let ok = check_progress(&tasks, &[p("b", 100), p("a", 0)]).expect("ok");
        assert_eq!(ok[0].task, "a");
        assert_eq!(ok[1].note, "n");
        let err = check_progress(&tasks, &[p("a", 101), p("a", 5), p("c", 5)]).expect_err("bad");
        let fields: Vec<&str> = err.iter().map(|i| i.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "tasks[0].percent",
                "tasks[1].task",
                "tasks[2].task",
                "task.b"
            ]
        );
    }

    #[test]
    fn the_shipped_plan_tasks_load_and_every_department_reports_on_some() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("service-definitions");
        let cat = crate::domain::catalogue::load_dir(&dir).expect("catalogue");
        let tasks = PlanTasks::load(&dir, &cat).expect("plan tasks");
        assert_eq!(tasks.all().len(), 13);
        assert_eq!(tasks.all()[0].number, "二(一)");
        for d in cat.departments() {
            assert!(!tasks.for_department(&d.uscc).is_empty(), "{}", d.uscc);
        }
        let broken = "[[task]]\ncode = \"a\"\nnumber = \"1\"\ntitle = \"t\"\ntitle_en = \"\"\nlead = \"l\"\nlead_en = \"l\"\nlead_departments = [\"nope\"]\n";
        let errors = PlanTasks::parse(broken, &cat).expect_err("broken");
        assert_eq!(errors.len(), 2, "{errors:?}");
    }

    #[test]
    fn the_mean_percent_of_a_report() {
        assert_eq!(
            mean_percent(&json!([{"percent": 50}, {"percent": 75}, {"percent": 100}])),
            Some(75.0)
        );
        assert_eq!(mean_percent(&json!([])), None);
    }
}

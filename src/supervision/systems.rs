//! See `super` for what this file holds.
//!
//! The information-system registry (政务信息系统自查): each department registers its
//! systems with the fields the city plan lists and how each connects to the exchange
//! (its department API token, push endpoint, data API), and files a self-inspection
//! report (自查报告) with its integration plan (整合共享计划) and data needs
//! (跨部门信息资源需求).
//!
//! Zombie detection (僵尸信息系统) is computed from the exchange's own records, never
//! from what is typed in: the system's token's calls per day (`token_usage`), delivery
//! attempts to its push endpoint while that is the department's endpoint, and reads of
//! the department's shared resources while its data API is the department's. From those
//! come the last successful exchange, monthly volumes and the failure share; and from
//! the department's routing, which systems receive the same services. [`flags`] turns
//! them into the plan's five reasons, with thresholds from `[supervision]` settings
//! (`zombie_*`). Viewing the registry brings each system's status up to date: an active
//! system with flags becomes `flagged`, a flagged one without flags (traffic came back)
//! `active` again. An operator decides on a flagged system: clear, merge into another,
//! or keep with a reason ([`decide`]); the decision and its author are recorded.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::config::SupervisionSystemSettings;
use crate::domain::catalogue::Access;
use crate::http::error::{AppError, FieldError, Message};
use crate::state::AppState;
use crate::store::sup_systems::{DayUse, InfoSystem, SelfInspection, SystemDecision};

/// Declared frequencies of use, with their labels.
pub const FREQUENCIES: [(&str, &str, &str); 4] = [
    ("daily", "每天", "daily"),
    ("weekly", "每周", "weekly"),
    ("monthly", "每月", "monthly"),
    ("rarely", "偶尔", "rarely"),
];
/// Networks (外网 / 内网 / 专网).
pub const NETWORKS: [(&str, &str, &str); 3] = [
    ("internet", "外网", "internet"),
    ("intranet", "内网（电子政务网）", "government intranet"),
    ("private", "专网", "private network"),
];
/// Hosting.
pub const HOSTINGS: [(&str, &str, &str); 2] = [
    ("data_centre", "大数据中心", "city big-data centre"),
    ("own_room", "自建机房", "own machine room"),
];
/// Statuses.
pub const STATUSES: [(&str, &str, &str); 5] = [
    ("active", "在用", "active"),
    ("flagged", "疑似僵尸", "flagged"),
    ("kept", "保留", "kept"),
    ("cleared", "已清理", "cleared"),
    ("merged", "已整合", "merged"),
];
/// Decisions.
pub const DECISIONS: [(&str, &str, &str); 3] = [
    ("clear", "清理（停用）", "clear (switch off)"),
    ("merge", "整合到其他系统", "merge into another system"),
    ("keep", "保留", "keep"),
];

/// The label of a code in a table of `(code, zh, en)`.
pub fn label(table: &[(&str, &'static str, &'static str)], code: &str) -> (String, String) {
    table
        .iter()
        .find(|(c, _, _)| *c == code)
        .map(|(_, zh, en)| ((*zh).to_owned(), (*en).to_owned()))
        .unwrap_or_else(|| (code.to_owned(), code.to_owned()))
}

fn known(table: &[(&str, &str, &str)], code: &str) -> bool {
    table.iter().any(|(c, _, _)| *c == code)
}

/// The plan's five reasons a system is a zombie (僵尸信息系统).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    /// 所占用资源长期处于空闲状态: no successful exchange for longer than the threshold.
    LongIdle,
    /// 系统使用与实际业务流程长期脱节: meant to connect, but on none of the exchange's routes.
    Detached,
    /// 功能可被其他系统替代: another system of the department is reached over the same route
    /// and carries more traffic.
    Replaceable,
    /// 运行维护停止更新服务: most recent calls fail, or no O&M budget and no change for long.
    Unmaintained,
    /// 使用范围小、频度低: declared monthly or rarer, and little traffic.
    SmallLow,
}

impl Flag {
    /// Every flag.
    pub const ALL: [Flag; 5] = [
        Flag::LongIdle,
        Flag::Detached,
        Flag::Replaceable,
        Flag::Unmaintained,
        Flag::SmallLow,
    ];

    /// The stored code.
    pub fn code(self) -> &'static str {
        match self {
            Flag::LongIdle => "long_idle",
            Flag::Detached => "detached",
            Flag::Replaceable => "replaceable",
            Flag::Unmaintained => "unmaintained",
            Flag::SmallLow => "small_low",
        }
    }

    /// From the stored code.
    pub fn from_code(code: &str) -> Option<Flag> {
        Flag::ALL.into_iter().find(|f| f.code() == code)
    }

    /// The plan's words (zh) and an English rendering.
    pub fn labels(self) -> (&'static str, &'static str) {
        match self {
            Flag::LongIdle => ("资源长期空闲", "idle for long"),
            Flag::Detached => ("与业务流程脱节", "detached from the business process"),
            Flag::Replaceable => ("功能可被替代", "replaceable by another system"),
            Flag::Unmaintained => ("运维停止更新", "no longer maintained"),
            Flag::SmallLow => ("使用范围小、频度低", "small scope and low frequency"),
        }
    }
}

/// The thresholds of [`flags`].
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Thresholds {
    /// Long idle after this many days without a successful exchange.
    pub idle_days: i64,
    /// Unmaintained at this failure share …
    pub failure_share: f64,
    /// … of at least this many recent calls.
    pub failure_min_calls: i64,
    /// Unmaintained, too: no O&M budget and no change for this many days.
    pub unmaintained_days: i64,
    /// Small and low below this average monthly volume.
    pub low_monthly_volume: i64,
    /// The recent months.
    pub recent_months: usize,
}

impl From<&SupervisionSystemSettings> for Thresholds {
    fn from(s: &SupervisionSystemSettings) -> Thresholds {
        Thresholds {
            idle_days: i64::from(s.zombie_idle_days),
            failure_share: s.zombie_failure_share,
            failure_min_calls: i64::from(s.zombie_failure_min_calls),
            unmaintained_days: i64::from(s.zombie_unmaintained_days),
            low_monthly_volume: i64::from(s.zombie_low_monthly_volume),
            recent_months: s.zombie_recent_months.clamp(1, 6) as usize,
        }
    }
}

/// What [`flags`] looks at: one system's record and its measured activity.
#[derive(Debug, Clone)]
pub struct FlagInput<'a> {
    /// The registered system.
    pub system: &'a InfoSystem,
    /// On at least one of the exchange's live routes (an active token of the
    /// department, the department's push endpoint or its data API).
    pub connected: bool,
    /// The last successful exchange.
    pub last_ok: Option<DateTime<Utc>>,
    /// Exchanges per month, oldest first; the last is the current month.
    pub monthly: &'a [MonthVolume],
    /// Another system of the department is reached over the same route ([`same_route`]) and carries more traffic.
    pub outdone_by_overlap: bool,
}

/// Exchanges in one month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct MonthVolume {
    /// `YYYY-MM`.
    pub month: String,
    /// Calls, deliveries and reads.
    pub calls: i64,
    /// Of those, failed.
    pub failures: i64,
}

/// The calls and failures of the last `n` months.
pub fn recent(monthly: &[MonthVolume], n: usize) -> (i64, i64) {
    monthly
        .iter()
        .rev()
        .take(n)
        .fold((0, 0), |(c, f), m| (c + m.calls, f + m.failures))
}

/// The failure share of calls (none of no calls).
pub fn failure_share(calls: i64, failures: i64) -> Option<f64> {
    (calls > 0).then(|| failures as f64 / calls as f64)
}

/// The zombie flags of one system (pure: the rules of the city plan's five reasons). A
/// cleared or merged system has none.
pub fn flags(i: &FlagInput<'_>, now: DateTime<Utc>, t: &Thresholds) -> Vec<Flag> {
    let s = i.system;
    if matches!(s.status.as_str(), "cleared" | "merged") {
        return Vec::new();
    }
    let mut out = Vec::new();
    // Idle: counted from the last success, or from registration if there never was one.
    let idle_since = i.last_ok.unwrap_or(s.created_at);
    if s.meant_to_connect && now - idle_since > Duration::days(t.idle_days) {
        out.push(Flag::LongIdle);
    }
    if s.meant_to_connect && !i.connected {
        out.push(Flag::Detached);
    }
    if i.outdone_by_overlap {
        out.push(Flag::Replaceable);
    }
    let (calls, failures) = recent(i.monthly, t.recent_months);
    let failing = calls >= t.failure_min_calls
        && failure_share(calls, failures).is_some_and(|sh| sh >= t.failure_share);
    let abandoned =
        s.om_cost_per_year == 0 && now - s.updated_at > Duration::days(t.unmaintained_days);
    if failing || abandoned {
        out.push(Flag::Unmaintained);
    }
    let rare = matches!(s.frequency.as_str(), "monthly" | "rarely");
    let months = i.monthly.len().min(t.recent_months).max(1) as i64;
    if rare && calls < t.low_monthly_volume * months {
        out.push(Flag::SmallLow);
    }
    out
}

/// Whether two systems of a department are reached over the same live route (pure):
/// the same token, or both the department's push endpoint, or both its data API. Then
/// the same services' events or the same resources' reads reach both, and the one with
/// less traffic could be replaced by the other.
pub fn same_route(a: (&InfoSystem, &[String]), b: (&InfoSystem, &[String])) -> bool {
    let has = |r: &[String], k: &str| r.iter().any(|x| x == k);
    (has(a.1, "token") && has(b.1, "token") && a.0.token_id == b.0.token_id)
        || (has(a.1, "push") && has(b.1, "push"))
        || (has(a.1, "data_api") && has(b.1, "data_api"))
}

/// The status a system moves to once its flags are known, if it changes: an active one
/// with flags is flagged; a flagged one without flags (traffic came back) is active. A
/// kept, cleared or merged system stays as the operator decided.
pub fn next_status(current: &str, flags: &[Flag]) -> Option<&'static str> {
    match (current, flags.is_empty()) {
        ("active", false) => Some("flagged"),
        ("flagged", true) => Some("active"),
        _ => None,
    }
}

/// The status a decision gives.
pub fn decided_status(decision: &str) -> Option<&'static str> {
    match decision {
        "clear" => Some("cleared"),
        "merge" => Some("merged"),
        "keep" => Some("kept"),
        _ => None,
    }
}

/// The boundaries of the last `n` calendar months (UTC), the current one last: `n + 1`
/// instants, from the first of the oldest month to the first of the next month.
pub fn month_bounds(now: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
    let first = |y: i32, m: u32| {
        Utc.from_utc_datetime(
            &NaiveDate::from_ymd_opt(y, m, 1)
                .expect("first of a month")
                .and_hms_opt(0, 0, 0)
                .expect("midnight"),
        )
    };
    let (mut y, mut m) = (now.year(), now.month());
    // step back n - 1 months
    for _ in 1..n {
        if m == 1 {
            y -= 1;
            m = 12;
        } else {
            m -= 1;
        }
    }
    let mut out = Vec::with_capacity(n + 1);
    for _ in 0..=n {
        out.push(first(y, m));
        if m == 12 {
            y += 1;
            m = 1;
        } else {
            m += 1;
        }
    }
    out
}

/// Sums a token's days into the months between `bounds`: (calls, failures) per month.
pub fn monthly_from_days(days: &[DayUse], bounds: &[DateTime<Utc>]) -> Vec<(i64, i64)> {
    let n = bounds.len().saturating_sub(1);
    let mut out = vec![(0, 0); n];
    for d in days {
        let at = Utc.from_utc_datetime(&d.day.and_hms_opt(0, 0, 0).expect("midnight"));
        if let Some(i) = (0..n).find(|&i| bounds[i] <= at && at < bounds[i + 1]) {
            out[i].0 += d.calls;
            out[i].1 += d.failures;
        }
    }
    out
}

// ---- token use ------------------------------------------------------------------------

/// Where the department API's authentication leaves the token it accepted (or refused
/// as revoked or expired), for [`count_token_use`] to count once the answer is known.
#[derive(Clone, Default)]
pub struct TokenUseSlot(
    std::sync::Arc<std::sync::OnceLock<(Uuid, std::sync::Arc<dyn crate::store::Store>)>>,
);

/// Called where a department token is looked up: a known token is counted when the
/// answer is known (in the slot [`count_token_use`] put on the request), or at once, as
/// a success or failure, where no slot is.
pub async fn note_token_use(
    parts: &axum::http::request::Parts,
    app: &AppState,
    token: Uuid,
    ok: bool,
) {
    match parts.extensions.get::<TokenUseSlot>() {
        Some(slot) => {
            let _ = slot.0.set((token, app.store.clone()));
        }
        None => record_use(app.store.as_ref(), token, ok).await,
    }
}

async fn record_use(store: &dyn crate::store::Store, token: Uuid, ok: bool) {
    if let Err(e) = store.record_token_use(token, Utc::now(), ok).await {
        // Counting must never cost a department its call.
        tracing::warn!(token = %token, error = %e, "token use not counted");
    }
}

/// Middleware of the department API: counts each call of a known token per day, a
/// call answered 4xx or 5xx as a failure and any other as a success (with its time).
pub async fn count_token_use(
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let slot = TokenUseSlot::default();
    req.extensions_mut().insert(slot.clone());
    let resp = next.run(req).await;
    if let Some((token, store)) = slot.0.get() {
        let ok = !(resp.status().is_client_error() || resp.status().is_server_error());
        record_use(store.as_ref(), *token, ok).await;
    }
    resp
}

// ---- registering ------------------------------------------------------------------

/// A system as a department registers or changes it.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SystemInput {
    /// Name (系统名称).
    #[serde(default)]
    pub name: String,
    /// What it does (主要功能).
    #[serde(default)]
    pub function: String,
    /// Who uses it and where (使用对象和范围).
    #[serde(default)]
    pub users_scope: String,
    /// Frequency of use: `daily`, `weekly`, `monthly`, `rarely`.
    #[serde(default)]
    pub frequency: String,
    /// Approving department (审批部门).
    #[serde(default)]
    pub approved_by: String,
    /// Approval date (审批时间), `YYYY-MM-DD`.
    #[serde(default)]
    pub approved_on: Option<NaiveDate>,
    /// Funding source (经费来源).
    #[serde(default)]
    pub funding: String,
    /// Build cost in yuan.
    #[serde(default)]
    pub build_cost: i64,
    /// O&M cost per year in yuan.
    #[serde(default)]
    pub om_cost_per_year: i64,
    /// `internet` (外网), `intranet` (内网), `private` (专网).
    #[serde(default)]
    pub network: String,
    /// `data_centre` (大数据中心) or `own_room` (自建机房).
    #[serde(default)]
    pub hosting: String,
    /// One of the department's API tokens (its id).
    #[serde(default)]
    pub token_id: Option<Uuid>,
    /// The push endpoint it receives events on.
    #[serde(default)]
    pub push_endpoint: Option<String>,
    /// Its data API.
    #[serde(default)]
    pub data_api: Option<String>,
    /// Counted among the systems meant to be connected (default yes).
    #[serde(default = "yes")]
    pub meant_to_connect: bool,
}

fn yes() -> bool {
    true
}

fn field(field: &str, zh: &str, en: &str) -> FieldError {
    FieldError {
        field: field.to_owned(),
        message: Message::new(zh, en),
    }
}

fn trimmed(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Checks an input; the department's tokens are the ones `token_id` may name. Answers
/// the input trimmed, or every field error at once.
pub fn validate(
    input: &SystemInput,
    department_tokens: &[Uuid],
) -> Result<SystemInput, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut out = input.clone();
    for (name, value, max) in [
        ("name", &mut out.name, 100usize),
        ("function", &mut out.function, 1000),
        ("users_scope", &mut out.users_scope, 500),
        ("approved_by", &mut out.approved_by, 100),
        ("funding", &mut out.funding, 100),
    ] {
        *value = value.trim().to_owned();
        let required = matches!(name, "name" | "function" | "users_scope");
        if required && value.is_empty() {
            errors.push(field(name, "请填写此项。", "This field is required."));
        } else if value.chars().count() > max {
            errors.push(field(
                name,
                &format!("不能超过{max}个字。"),
                &format!("At most {max} characters."),
            ));
        }
    }
    if !known(&FREQUENCIES, &out.frequency) {
        errors.push(field(
            "frequency",
            "使用频度应为 daily、weekly、monthly 或 rarely。",
            "The frequency must be daily, weekly, monthly or rarely.",
        ));
    }
    if !known(&NETWORKS, &out.network) {
        errors.push(field(
            "network",
            "网络应为 internet（外网）、intranet（内网）或 private（专网）。",
            "The network must be internet, intranet or private.",
        ));
    }
    if !known(&HOSTINGS, &out.hosting) {
        errors.push(field(
            "hosting",
            "部署位置应为 data_centre（大数据中心）或 own_room（自建机房）。",
            "The hosting must be data_centre or own_room.",
        ));
    }
    for (name, v) in [
        ("build_cost", out.build_cost),
        ("om_cost_per_year", out.om_cost_per_year),
    ] {
        if !(0..=100_000_000_000).contains(&v) {
            errors.push(field(
                name,
                "金额应为 0 至 1000 亿元之间的整数（元）。",
                "The amount must be a whole number of yuan from 0 to 100 billion.",
            ));
        }
    }
    if let Some(t) = out.token_id
        && !department_tokens.contains(&t)
    {
        errors.push(field(
            "token_id",
            "该令牌不是本部门的接口令牌。",
            "This is not one of the department's API tokens.",
        ));
    }
    out.push_endpoint = trimmed(&out.push_endpoint);
    out.data_api = trimmed(&out.data_api);
    for (name, v) in [
        ("push_endpoint", &out.push_endpoint),
        ("data_api", &out.data_api),
    ] {
        if let Some(u) = v
            && (u.len() > 500
                || !url::Url::parse(u).is_ok_and(|p| matches!(p.scheme(), "http" | "https")))
        {
            errors.push(field(
                name,
                "应为 http:// 或 https:// 开头的网址。",
                "Must be an http:// or https:// URL.",
            ));
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn apply_input(s: &mut InfoSystem, i: SystemInput) {
    s.name = i.name;
    s.function = i.function;
    s.users_scope = i.users_scope;
    s.frequency = i.frequency;
    s.approved_by = i.approved_by;
    s.approved_on = i.approved_on;
    s.funding = i.funding;
    s.build_cost = i.build_cost;
    s.om_cost_per_year = i.om_cost_per_year;
    s.network = i.network;
    s.hosting = i.hosting;
    s.token_id = i.token_id;
    s.push_endpoint = i.push_endpoint;
    s.data_api = i.data_api;
    s.meant_to_connect = i.meant_to_connect;
}

async fn department_tokens(app: &AppState, department: &str) -> Result<Vec<Uuid>, AppError> {
    Ok(app
        .store
        .api_tokens()
        .await?
        .into_iter()
        .filter(|t| t.department == department)
        .map(|t| t.id)
        .collect())
}

/// Registers a system of `department`.
pub async fn register(
    app: &AppState,
    department: &str,
    by: &str,
    input: &SystemInput,
    now: DateTime<Utc>,
) -> Result<InfoSystem, AppError> {
    let tokens = department_tokens(app, department).await?;
    let input = validate(input, &tokens).map_err(AppError::Invalid)?;
    let mut s = InfoSystem {
        id: Uuid::now_v7(),
        department: department.to_owned(),
        name: String::new(),
        function: String::new(),
        users_scope: String::new(),
        frequency: String::new(),
        approved_by: String::new(),
        approved_on: None,
        funding: String::new(),
        build_cost: 0,
        om_cost_per_year: 0,
        network: String::new(),
        hosting: String::new(),
        token_id: None,
        push_endpoint: None,
        data_api: None,
        meant_to_connect: true,
        status: "active".into(),
        merged_into: None,
        created_by: by.to_owned(),
        created_at: now,
        updated_at: now,
    };
    apply_input(&mut s, input);
    app.store.insert_system(&s).await?;
    Ok(s)
}

fn not_found() -> AppError {
    AppError::NotFound(Message::new(
        "没有这个信息系统。",
        "No such information system.",
    ))
}

/// One system, if `department` (when given) owns it.
pub async fn find(
    app: &AppState,
    id: Uuid,
    department: Option<&str>,
) -> Result<InfoSystem, AppError> {
    match app.store.system(id).await? {
        Some(s) if department.is_none_or(|d| d == s.department) => Ok(s),
        _ => Err(not_found()),
    }
}

/// Changes a system's registered fields; only its own department can.
pub async fn update(
    app: &AppState,
    department: &str,
    id: Uuid,
    input: &SystemInput,
    now: DateTime<Utc>,
) -> Result<InfoSystem, AppError> {
    let mut s = find(app, id, Some(department)).await?;
    let tokens = department_tokens(app, department).await?;
    let input = validate(input, &tokens).map_err(AppError::Invalid)?;
    apply_input(&mut s, input);
    s.updated_at = now;
    if !app.store.update_system(&s).await? {
        return Err(not_found());
    }
    Ok(s)
}

// ---- assessing ----------------------------------------------------------------------

/// A system with what the exchange's records say about it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SystemAssessment {
    /// The system (its status brought up to date).
    #[schema(value_type = Object)]
    pub system: Value,
    /// On one of the exchange's live routes.
    pub connected: bool,
    /// Which routes: `token`, `push`, `data_api`.
    pub routes: Vec<String>,
    /// The last successful exchange.
    pub last_ok: Option<DateTime<Utc>>,
    /// Exchanges per month, oldest first.
    pub monthly: Vec<MonthVolume>,
    /// Failure share over the recent months (0–1).
    pub failure_share: Option<f64>,
    /// Services routed to it (codes).
    pub services: Vec<String>,
    /// Other systems of the department receiving the same services.
    pub overlaps: Vec<Overlap>,
    /// The zombie flags.
    pub flags: Vec<Flag>,
}

/// Another system receiving the same services.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Overlap {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Services both receive.
    pub shared_services: usize,
}

/// The system as JSON (for the API and the pages).
pub fn system_json(s: &InfoSystem) -> Value {
    serde_json::json!({
        "id": s.id,
        "department": s.department,
        "name": s.name,
        "function": s.function,
        "users_scope": s.users_scope,
        "frequency": s.frequency,
        "approved_by": s.approved_by,
        "approved_on": s.approved_on,
        "funding": s.funding,
        "build_cost": s.build_cost,
        "om_cost_per_year": s.om_cost_per_year,
        "network": s.network,
        "hosting": s.hosting,
        "token_id": s.token_id,
        "push_endpoint": s.push_endpoint,
        "data_api": s.data_api,
        "meant_to_connect": s.meant_to_connect,
        "status": s.status,
        "merged_into": s.merged_into,
        "created_at": s.created_at,
        "updated_at": s.updated_at,
    })
}

/// How many months the registry shows.
pub const MONTHS_SHOWN: usize = 6;

struct Measured {
    routes: Vec<String>,
    last_ok: Option<DateTime<Utc>>,
    monthly: Vec<MonthVolume>,
    services: Vec<String>,
}

/// Assesses the systems (all of one department, or all), brings their statuses up to
/// date (flagged / active again), and answers them in the given order.
pub async fn assess(
    app: &AppState,
    department: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Vec<SystemAssessment>, AppError> {
    let systems = app.store.systems(department).await?;
    let tokens = app.store.api_tokens().await?;
    let endpoints = app.store.endpoints().await?;
    let bounds = month_bounds(now, MONTHS_SHOWN);
    let t = Thresholds::from(&app.settings.supervision_systems);
    let mut measured: Vec<Measured> = Vec::with_capacity(systems.len());
    // One query per department and route, shared by its systems.
    let mut push_cache: HashMap<String, crate::store::sup_systems::Buckets> = HashMap::new();
    let mut data_cache: HashMap<String, crate::store::sup_systems::Buckets> = HashMap::new();
    for s in &systems {
        let mut routes = Vec::new();
        let mut per_month = vec![(0i64, 0i64); MONTHS_SHOWN];
        let mut last_ok: Option<DateTime<Utc>> = None;
        let mut services = Vec::new();
        let endpoint = endpoints.iter().find(|e| e.department == s.department);
        if let Some(tid) = s.token_id {
            let live = tokens
                .iter()
                .any(|tk| tk.id == tid && tk.department == s.department && tk.is_active(now));
            if live {
                routes.push("token".to_owned());
            }
            let days = app.store.token_days(tid, bounds[0].date_naive()).await?;
            for (i, (c, f)) in monthly_from_days(&days, &bounds).into_iter().enumerate() {
                per_month[i].0 += c;
                per_month[i].1 += f;
            }
            last_ok = last_ok.max(app.store.token_last_ok(tid).await?);
        }
        if let (Some(p), Some(e)) = (&s.push_endpoint, endpoint)
            && e.mode == "push"
            && e.endpoint.as_deref() == Some(p.as_str())
        {
            routes.push("push".to_owned());
            if !push_cache.contains_key(&s.department) {
                let b = app.store.delivery_buckets(&s.department, &bounds).await?;
                push_cache.insert(s.department.clone(), b);
            }
            let b = &push_cache[&s.department];
            for (m, (total, ok)) in per_month.iter_mut().zip(b.totals.iter().zip(&b.oks)) {
                m.0 += total;
                m.1 += total - ok;
            }
            last_ok = last_ok.max(b.last_ok);
        }
        if let (Some(d), Some(e)) = (&s.data_api, endpoint)
            && e.data_api.as_deref() == Some(d.as_str())
        {
            routes.push("data_api".to_owned());
            if !data_cache.contains_key(&s.department) {
                let resources: Vec<String> = app
                    .catalogue
                    .resources()
                    .iter()
                    .filter(|r| r.provider == s.department && r.access == Access::DepartmentApi)
                    .map(|r| r.code.clone())
                    .collect();
                let b = app.store.data_access_buckets(&resources, &bounds).await?;
                data_cache.insert(s.department.clone(), b);
            }
            let b = &data_cache[&s.department];
            for (m, total) in per_month.iter_mut().zip(&b.totals) {
                m.0 += total;
            }
            last_ok = last_ok.max(b.last_ok);
        }
        // Cases of the department's services reach a system through its token (pull
        // and status API) or its push endpoint.
        if routes.iter().any(|r| r == "token" || r == "push") {
            services = app
                .catalogue
                .services()
                .iter()
                .filter(|sv| sv.department == s.department)
                .map(|sv| sv.code.clone())
                .collect();
        }
        let monthly = per_month
            .into_iter()
            .enumerate()
            .map(|(i, (calls, failures))| MonthVolume {
                month: bounds[i].format("%Y-%m").to_string(),
                calls,
                failures,
            })
            .collect();
        measured.push(Measured {
            routes,
            last_ok,
            monthly,
            services,
        });
    }
    let mut out = Vec::with_capacity(systems.len());
    for (i, s) in systems.iter().enumerate() {
        let m = &measured[i];
        let live = |x: &InfoSystem| !matches!(x.status.as_str(), "cleared" | "merged");
        let mut overlaps = Vec::new();
        let mut outdone = false;
        let (mine, _) = recent(&m.monthly, t.recent_months);
        if live(s) {
            for (j, o) in systems.iter().enumerate() {
                if j == i || o.department != s.department || !live(o) {
                    continue;
                }
                if !same_route((s, &m.routes), (o, &measured[j].routes)) {
                    continue;
                }
                let shared = m
                    .services
                    .iter()
                    .filter(|c| measured[j].services.contains(c))
                    .count();
                overlaps.push(Overlap {
                    id: o.id,
                    name: o.name.clone(),
                    shared_services: shared,
                });
                let (theirs, _) = recent(&measured[j].monthly, t.recent_months);
                if theirs > mine {
                    outdone = true;
                }
            }
        }
        let input = FlagInput {
            system: s,
            connected: !m.routes.is_empty(),
            last_ok: m.last_ok,
            monthly: &m.monthly,
            outdone_by_overlap: outdone,
        };
        let fl = flags(&input, now, &t);
        let mut sys = s.clone();
        if let Some(to) = next_status(&s.status, &fl)
            && app
                .store
                .set_system_status(s.id, &[s.status.as_str()], to, now)
                .await?
        {
            tracing::info!(system = %s.id, from = %s.status, to, "information system status");
            sys.status = to.to_owned();
        }
        let (calls, failures) = recent(&m.monthly, t.recent_months);
        out.push(SystemAssessment {
            system: system_json(&sys),
            connected: !m.routes.is_empty(),
            routes: m.routes.clone(),
            last_ok: m.last_ok,
            monthly: m.monthly.clone(),
            failure_share: failure_share(calls, failures),
            services: m.services.clone(),
            overlaps,
            flags: fl,
        });
    }
    Ok(out)
}

/// One system's assessment (its department's systems are assessed with it, for the
/// overlaps).
pub async fn assess_one(
    app: &AppState,
    id: Uuid,
    department: Option<&str>,
    now: DateTime<Utc>,
) -> Result<SystemAssessment, AppError> {
    let s = find(app, id, department).await?;
    assess(app, Some(&s.department), now)
        .await?
        .into_iter()
        .find(|a| a.system["id"] == serde_json::json!(id))
        .ok_or_else(not_found)
}

// ---- deciding -----------------------------------------------------------------------

/// An operator's decision on a flagged system.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionInput {
    /// `clear`, `merge` or `keep`.
    pub decision: String,
    /// For `merge`: the system it goes into (of the same department, not cleared).
    #[serde(default)]
    pub merged_into: Option<Uuid>,
    /// Why (required).
    #[serde(default)]
    pub reason: String,
}

/// Records an operator's decision: the flags at that moment, the author, and the
/// system's new status.
pub async fn decide(
    app: &AppState,
    id: Uuid,
    input: &DecisionInput,
    operator: (Uuid, &str),
    now: DateTime<Utc>,
) -> Result<SystemDecision, AppError> {
    let a = assess_one(app, id, None, now).await?;
    let s = find(app, id, None).await?;
    let mut errors = Vec::new();
    let status = decided_status(&input.decision);
    if status.is_none() {
        errors.push(field(
            "decision",
            "处理决定应为 clear（清理）、merge（整合）或 keep（保留）。",
            "The decision must be clear, merge or keep.",
        ));
    }
    let reason = input.reason.trim();
    if reason.is_empty() {
        errors.push(field("reason", "请写明理由。", "Give the reason."));
    } else if reason.chars().count() > 1000 {
        errors.push(field(
            "reason",
            "不能超过1000个字。",
            "At most 1000 characters.",
        ));
    }
    let mut merged_into = None;
    if input.decision == "merge" {
        match input.merged_into {
            None => errors.push(field(
                "merged_into",
                "请选择整合到哪个系统。",
                "Choose the system it is merged into.",
            )),
            Some(t) => match app.store.system(t).await? {
                Some(o)
                    if o.id != s.id
                        && o.department == s.department
                        && !matches!(o.status.as_str(), "cleared" | "merged") =>
                {
                    merged_into = Some(t)
                }
                _ => errors.push(field(
                    "merged_into",
                    "只能整合到本部门另一个在用的系统。",
                    "It can only be merged into another live system of the same department.",
                )),
            },
        }
    }
    if !errors.is_empty() {
        return Err(AppError::Invalid(errors));
    }
    if matches!(s.status.as_str(), "cleared" | "merged") {
        return Err(AppError::Conflict(Message::new(
            "该系统已清理或已整合，不能再作处理决定。",
            "This system is already cleared or merged; no further decision can be made.",
        )));
    }
    let d = SystemDecision {
        id: Uuid::now_v7(),
        system_id: s.id,
        flags: a.flags.iter().map(|f| f.code().to_owned()).collect(),
        decision: input.decision.clone(),
        merged_into,
        reason: reason.to_owned(),
        decided_by: operator.0.to_string(),
        decided_name: operator.1.to_owned(),
        decided_at: now,
    };
    let status = status.expect("checked above");
    app.store.record_decision(&d, status).await?;
    crate::audit::action(
        app,
        &crate::audit::Who {
            kind: "operator",
            id: Some(operator.0.to_string()),
        },
        "system.decide",
        format!("system:{}", s.id),
        &s.id.to_string(),
        serde_json::json!({ "decision": d.decision, "merged_into": d.merged_into, "status": status }),
    )
    .await?;
    tracing::info!(system = %s.id, decision = %d.decision, "zombie decision recorded");
    Ok(d)
}

/// A decision as JSON.
pub fn decision_json(d: &SystemDecision) -> Value {
    serde_json::json!({
        "id": d.id,
        "system_id": d.system_id,
        "flags": d.flags,
        "decision": d.decision,
        "merged_into": d.merged_into,
        "reason": d.reason,
        "decided_by": d.decided_by,
        "decided_name": d.decided_name,
        "decided_at": d.decided_at,
    })
}

// ---- self-inspection report -------------------------------------------------------------

/// One need for another department's data (跨部门信息资源需求).
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DataNeed {
    /// The providing department (USCC).
    pub provider: String,
    /// The resource (a catalogue code or a name).
    pub resource: String,
    /// The data items wanted.
    #[serde(default)]
    pub items: String,
    /// What for.
    pub purpose: String,
}

/// A department's report as filed.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportInput {
    /// The integration plan (整合共享计划).
    #[serde(default)]
    pub integration_plan: String,
    /// The needs for other departments' data.
    #[serde(default)]
    pub data_needs: Vec<DataNeed>,
}

/// Files (or refiles) a department's report for a year.
pub async fn file_report(
    app: &AppState,
    department: &str,
    year: i32,
    input: &ReportInput,
    by: (Uuid, &str),
    now: DateTime<Utc>,
) -> Result<SelfInspection, AppError> {
    let mut errors = Vec::new();
    let plan = input.integration_plan.trim();
    if plan.is_empty() {
        errors.push(field(
            "integration_plan",
            "请填写整合共享计划。",
            "Give the integration plan.",
        ));
    } else if plan.chars().count() > 5000 {
        errors.push(field(
            "integration_plan",
            "不能超过5000个字。",
            "At most 5000 characters.",
        ));
    }
    if !(2000..=2100).contains(&year) {
        errors.push(field("year", "年份有误。", "Not a valid year."));
    }
    if input.data_needs.len() > 100 {
        errors.push(field(
            "data_needs",
            "需求不能超过100条。",
            "At most 100 needs.",
        ));
    }
    let mut needs = Vec::new();
    for (i, n) in input.data_needs.iter().enumerate() {
        let provider = n.provider.trim();
        if app.catalogue.department(provider).is_none() || provider == department {
            errors.push(field(
                &format!("data_needs[{i}].provider"),
                "请选择提供数据的其他部门。",
                "Choose the other department that provides the data.",
            ));
        }
        if n.resource.trim().is_empty() || n.resource.chars().count() > 200 {
            errors.push(field(
                &format!("data_needs[{i}].resource"),
                "请填写所需信息资源（不超过200字）。",
                "Name the resource needed (at most 200 characters).",
            ));
        }
        if n.purpose.trim().is_empty() || n.purpose.chars().count() > 500 {
            errors.push(field(
                &format!("data_needs[{i}].purpose"),
                "请填写用途（不超过500字）。",
                "Give the purpose (at most 500 characters).",
            ));
        }
        if n.items.chars().count() > 500 {
            errors.push(field(
                &format!("data_needs[{i}].items"),
                "不能超过500个字。",
                "At most 500 characters.",
            ));
        }
        needs.push(DataNeed {
            provider: provider.to_owned(),
            resource: n.resource.trim().to_owned(),
            items: n.items.trim().to_owned(),
            purpose: n.purpose.trim().to_owned(),
        });
    }
    if !errors.is_empty() {
        return Err(AppError::Invalid(errors));
    }
    let r = SelfInspection {
        department: department.to_owned(),
        year,
        integration_plan: plan.to_owned(),
        data_needs: serde_json::to_value(&needs).unwrap_or(Value::Array(Vec::new())),
        submitted_by: by.0.to_string(),
        submitted_name: by.1.to_owned(),
        submitted_at: now,
    };
    app.store.upsert_self_inspection(&r).await?;
    Ok(r)
}

/// The report's needs, read back.
pub fn needs_of(r: &SelfInspection) -> Vec<DataNeed> {
    serde_json::from_value(r.data_needs.clone()).unwrap_or_default()
}

/// The table of a report's systems, for CSV and XLSX: a header row and one row per
/// system, in the language given (data kept as typed).
pub fn report_rows(
    lang: crate::domain::lang::Lang,
    systems: &[SystemAssessment],
    t: impl Fn(&str) -> String,
) -> Vec<Vec<String>> {
    let head = [
        "col_name",
        "col_function",
        "col_users_scope",
        "col_frequency",
        "col_approved_by",
        "col_approved_on",
        "col_funding",
        "col_build_cost",
        "col_om_cost",
        "col_network",
        "col_hosting",
        "col_connection",
        "col_last_ok",
        "col_volume",
        "col_status",
        "col_flags",
    ];
    let mut rows = vec![
        head.iter()
            .map(|k| t(&format!("sup_systems.{k}")))
            .collect::<Vec<_>>(),
    ];
    let s = |v: &Value, k: &str| v[k].as_str().unwrap_or("").to_owned();
    for a in systems {
        let v = &a.system;
        let pick = |table: &[(&str, &'static str, &'static str)], k: &str| {
            let (zh, en) = label(table, &s(v, k));
            lang.pick(&zh, &en).to_owned()
        };
        let volume: i64 = a.monthly.iter().map(|m| m.calls).sum();
        rows.push(vec![
            s(v, "name"),
            s(v, "function"),
            s(v, "users_scope"),
            pick(&FREQUENCIES, "frequency"),
            s(v, "approved_by"),
            s(v, "approved_on"),
            s(v, "funding"),
            v["build_cost"].as_i64().unwrap_or(0).to_string(),
            v["om_cost_per_year"].as_i64().unwrap_or(0).to_string(),
            pick(&NETWORKS, "network"),
            pick(&HOSTINGS, "hosting"),
            a.routes.join(" "),
            a.last_ok
                .map(|t| t.format("%Y-%m-%d").to_string())
                .unwrap_or_default(),
            volume.to_string(),
            pick(&STATUSES, "status"),
            a.flags
                .iter()
                .map(|f| {
                    let (zh, en) = f.labels();
                    lang.pick(zh, en)
                })
                .collect::<Vec<_>>()
                .join(lang.pick("、", "; ")),
        ]);
    }
    rows
}

/// Rows as CSV (UTF-8 with a byte-order mark, so spreadsheet programs read Chinese).
pub fn to_csv(sections: &[(String, Vec<Vec<String>>)]) -> Result<Vec<u8>, AppError> {
    let mut w = csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(vec![0xEF, 0xBB, 0xBF]);
    for (i, (title, rows)) in sections.iter().enumerate() {
        if i > 0 {
            w.write_record([""])
                .map_err(|e| AppError::Internal(e.into()))?;
        }
        w.write_record([title])
            .map_err(|e| AppError::Internal(e.into()))?;
        for r in rows {
            w.write_record(r)
                .map_err(|e| AppError::Internal(e.into()))?;
        }
    }
    w.into_inner()
        .map_err(|e| AppError::Internal(anyhow::anyhow!("csv: {e}")))
}

/// Rows as an XLSX workbook, one sheet per section (bold header row).
pub fn to_xlsx(sections: &[(String, Vec<Vec<String>>)]) -> Result<Vec<u8>, AppError> {
    use rust_xlsxwriter::{Format, Workbook};
    let bad = |e: rust_xlsxwriter::XlsxError| AppError::Internal(anyhow::anyhow!("xlsx: {e}"));
    let mut wb = Workbook::new();
    let bold = Format::new().set_bold();
    for (title, rows) in sections {
        let sheet = wb.add_worksheet();
        // Sheet names: at most 31 characters, none of []:*?/\
        let name: String = title
            .chars()
            .filter(|c| !"[]:*?/\\".contains(*c))
            .take(31)
            .collect();
        sheet.set_name(&name).map_err(bad)?;
        for (r, row) in rows.iter().enumerate() {
            for (c, cell) in row.iter().enumerate() {
                let (r, c) = (r as u32, c as u16);
                match cell.parse::<i64>() {
                    Ok(n) if r > 0 && !cell.starts_with('0') || cell == "0" => {
                        sheet.write_number(r, c, n as f64).map_err(bad)?;
                    }
                    _ if r == 0 => {
                        sheet
                            .write_string_with_format(r, c, cell, &bold)
                            .map_err(bad)?;
                    }
                    _ => {
                        sheet.write_string(r, c, cell).map_err(bad)?;
                    }
                }
            }
        }
        if let Some(first) = rows.first() {
            for c in 0..first.len() {
                sheet.set_column_width(c as u16, 18).map_err(bad)?;
            }
        }
    }
    wb.save_to_buffer().map_err(bad)
}

// ---- demo data ----------------------------------------------------------------------

/// A demo system: (department, name, function, users, frequency, network, hosting,
/// O&M per year, traffic profile).
struct DemoSystem {
    department: &'static str,
    name: &'static str,
    function: &'static str,
    users: &'static str,
    frequency: &'static str,
    network: &'static str,
    hosting: &'static str,
    build_cost: i64,
    om: i64,
    /// Calls per working day now; 0: none.
    daily_calls: i64,
    /// Days since the last call (0: today).
    idle_days: i64,
    /// Failures in a hundred calls.
    fail_pct: i64,
}

// One row of the demo table a line: the positional arguments read as the table's columns.
#[allow(clippy::too_many_arguments)]
const fn demo(
    department: &'static str,
    name: &'static str,
    function: &'static str,
    users: &'static str,
    frequency: &'static str,
    hosting: &'static str,
    om: i64,
    daily_calls: i64,
    idle_days: i64,
    fail_pct: i64,
) -> DemoSystem {
    DemoSystem {
        department,
        name,
        function,
        users,
        frequency,
        network: "intranet",
        hosting,
        build_cost: om * 4,
        om,
        daily_calls,
        idle_days,
        fail_pct,
    }
}

/// The name of the demo's zombie (the filings and figures seeds look it up by name).
pub const DEMO_ZOMBIE: &str = "旧版档案查询系统";

fn demo_systems() -> Vec<DemoSystem> {
    const MR: &str = "11150700MB1530001X";
    const PS: &str = "11150700MB15300021";
    const HR: &str = "11150700MB15300034";
    let d = |i: usize| -> &'static str { DEPARTMENTS_FOR_DEMO[i] };
    vec![
        demo(
            MR,
            "企业登记注册系统",
            "企业设立、变更、注销登记",
            "全市市场监管窗口及网上申报企业",
            "daily",
            "data_centre",
            450_000,
            260,
            0,
            1,
        ),
        demo(
            MR,
            "个体工商户登记系统",
            "个体工商户登记与年报",
            "旗县市区市场监管所",
            "daily",
            "data_centre",
            180_000,
            90,
            0,
            2,
        ),
        demo(
            MR,
            "食品经营许可审批系统",
            "食品经营许可受理与发证",
            "市、旗县市区两级审批人员",
            "weekly",
            "own_room",
            120_000,
            25,
            1,
            3,
        ),
        demo(
            PS,
            "户籍业务管理系统",
            "户口登记、迁移、证明出具",
            "全市派出所户籍窗口",
            "daily",
            "own_room",
            600_000,
            320,
            0,
            1,
        ),
        demo(
            PS,
            "无犯罪记录证明系统",
            "无犯罪记录证明申请与出具",
            "市局及分局窗口",
            "daily",
            "data_centre",
            150_000,
            60,
            0,
            2,
        ),
        demo(
            PS,
            "居住证签注系统",
            "居住证办理与签注",
            "派出所窗口",
            "weekly",
            "data_centre",
            80_000,
            15,
            2,
            2,
        ),
        demo(
            HR,
            "社会保障卡管理系统",
            "社保卡申领、挂失、补换",
            "全市人社窗口及合作银行网点",
            "daily",
            "data_centre",
            520_000,
            280,
            0,
            1,
        ),
        demo(
            HR,
            "就业登记系统",
            "就业失业登记、就业创业证",
            "街道社区劳动保障站",
            "weekly",
            "data_centre",
            150_000,
            30,
            1,
            4,
        ),
        demo(
            HR,
            DEMO_ZOMBIE,
            "2012年建设的人事档案查询，功能已由社会保障卡管理系统覆盖",
            "市本级档案室",
            "rarely",
            "own_room",
            0,
            0,
            200,
            0,
        ),
        demo(
            HR,
            "职业技能鉴定报名系统",
            "职业技能鉴定网上报名",
            "考生及培训机构",
            "monthly",
            "own_room",
            60_000,
            2,
            20,
            60,
        ),
        demo(
            d(3),
            "公共卫生许可系统",
            "公共场所卫生许可",
            "卫生监督所",
            "weekly",
            "data_centre",
            90_000,
            20,
            1,
            2,
        ),
        demo(
            d(3),
            "医疗机构执业登记系统",
            "医疗机构设置审批与执业登记",
            "市卫健委审批科",
            "weekly",
            "data_centre",
            110_000,
            12,
            3,
            1,
        ),
        demo(
            d(4),
            "不动产登记系统",
            "不动产登记受理、审核、登簿",
            "不动产登记中心",
            "daily",
            "data_centre",
            380_000,
            150,
            0,
            1,
        ),
        demo(
            d(4),
            "国土空间规划一张图",
            "规划成果查询",
            "规划科室",
            "weekly",
            "data_centre",
            160_000,
            10,
            4,
            1,
        ),
        demo(
            d(5),
            "文化市场经营许可系统",
            "娱乐场所、网吧等经营许可",
            "文化市场科",
            "weekly",
            "data_centre",
            70_000,
            9,
            2,
            2,
        ),
        demo(
            d(5),
            "旅游市场监管平台",
            "旅行社、导游管理与投诉处理",
            "旅游市场科",
            "weekly",
            "own_room",
            85_000,
            14,
            1,
            3,
        ),
        demo(
            d(6),
            "医保经办管理系统",
            "参保登记、待遇核定、异地就医备案",
            "全市医保经办窗口",
            "daily",
            "data_centre",
            480_000,
            240,
            0,
            1,
        ),
        demo(
            d(6),
            "医保基金监管系统",
            "定点机构结算监管",
            "医保基金监管科",
            "daily",
            "own_room",
            200_000,
            40,
            0,
            2,
        ),
        demo(
            d(7),
            "社会救助管理系统",
            "低保、特困审核审批",
            "苏木乡镇民政助理",
            "weekly",
            "data_centre",
            130_000,
            18,
            1,
            2,
        ),
        demo(
            d(7),
            "婚姻登记系统",
            "结婚、离婚登记与补领",
            "婚姻登记处",
            "daily",
            "data_centre",
            60_000,
            30,
            0,
            1,
        ),
        demo(
            d(8),
            "政务服务网上办事大厅",
            "网上申报、进度查询",
            "全市办事群众和企业",
            "daily",
            "data_centre",
            420_000,
            400,
            0,
            1,
        ),
        demo(
            d(8),
            "电子证照库",
            "电子证照归集与核验",
            "全市各审批部门",
            "daily",
            "data_centre",
            260_000,
            180,
            0,
            1,
        ),
        demo(
            d(8),
            "政务服务好差评系统",
            "办件评价归集",
            "全市政务服务窗口",
            "daily",
            "data_centre",
            50_000,
            60,
            0,
            2,
        ),
        demo(
            d(9),
            "投资项目在线审批监管平台",
            "投资项目赋码、审批、监管",
            "项目单位及审批部门",
            "daily",
            "data_centre",
            220_000,
            55,
            0,
            1,
        ),
        demo(
            d(9),
            "公共信用信息平台",
            "信用信息归集与查询",
            "全市各部门",
            "weekly",
            "data_centre",
            150_000,
            25,
            1,
            2,
        ),
    ]
}

/// The ten departments of `service-definitions/departments.toml` in file order (the
/// first three are named in [`demo_systems`] by their codes too).
const DEPARTMENTS_FOR_DEMO: [&str; 10] = [
    "11150700MB1530001X",
    "11150700MB15300021",
    "11150700MB15300034",
    "11150700MB15300047",
    "11150700MB1530005A",
    "11150700MB1530006D",
    "11150700MB1530007G",
    "11150700MB1530008K",
    "11150700MB1530009N",
    "11150700MB1530010U",
];

/// Seeds the demo's systems (2–4 per department, one zombie idle for months, one
/// system failing most calls), each active one with a token and its daily use for six
/// months, and a self-inspection report for three departments. Idempotent: a system
/// already registered under its name is left as it is. Departments not in the catalogue
/// are skipped. Answers how many systems it registered.
pub async fn seed_demo(app: &AppState, now: DateTime<Utc>) -> anyhow::Result<usize> {
    let existing = app.store.systems(None).await?;
    let mut made = 0;
    let mut by_dept: BTreeMap<&str, usize> = BTreeMap::new();
    for d in demo_systems() {
        if app.catalogue.department(d.department).is_none() {
            continue;
        }
        let n = by_dept.entry(d.department).or_default();
        *n += 1;
        if existing
            .iter()
            .any(|s| s.department == d.department && s.name == d.name)
        {
            continue;
        }
        let registered = now - Duration::days(400);
        let token = if d.daily_calls > 0 || d.idle_days > 0 {
            let (t, _secret) = crate::auth::tokens::issue(
                app.store.as_ref(),
                d.department,
                vec!["cases:read".into()],
                format!("{}（演示）", d.name),
                None,
                registered,
            )
            .await?;
            Some(t.id)
        } else {
            None
        };
        let s = InfoSystem {
            id: Uuid::now_v7(),
            department: d.department.to_owned(),
            name: d.name.to_owned(),
            function: d.function.to_owned(),
            users_scope: d.users.to_owned(),
            frequency: d.frequency.to_owned(),
            approved_by: "呼伦贝尔市发展和改革委员会".to_owned(),
            approved_on: NaiveDate::from_ymd_opt(
                2012 + (made as i32 % 6),
                3 + (made as u32 % 9),
                15,
            ),
            funding: "市本级财政".to_owned(),
            build_cost: d.build_cost,
            om_cost_per_year: d.om,
            network: d.network.to_owned(),
            hosting: d.hosting.to_owned(),
            token_id: token,
            push_endpoint: None,
            data_api: None,
            meant_to_connect: true,
            status: "active".into(),
            merged_into: None,
            created_by: "seed".into(),
            created_at: registered,
            updated_at: if d.om == 0 {
                now - Duration::days(800)
            } else {
                registered
            },
        };
        app.store.insert_system(&s).await?;
        made += 1;
        if let Some(tid) = token {
            seed_usage(app, tid, &d, now).await?;
        }
    }
    seed_reports(app, now).await?;
    Ok(made)
}

async fn seed_usage(
    app: &AppState,
    token: Uuid,
    d: &DemoSystem,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    // 180 days back; weekdays only; volumes grow a little towards now; a system's
    // traffic stops `idle_days` ago.
    let today = now.date_naive();
    // a system silent for long: its last two months of use before it fell silent
    let days = if d.idle_days > 150 {
        d.idle_days..d.idle_days + 60
    } else {
        d.idle_days..180
    };
    for back in days.rev() {
        let day = today - Duration::days(back);
        if matches!(day.weekday(), chrono::Weekday::Sat | chrono::Weekday::Sun) {
            continue;
        }
        let base = if d.daily_calls > 0 {
            d.daily_calls
        } else {
            // the zombie: a trickle before it fell silent
            2
        };
        // a deterministic wobble of ±20 %
        let wobble = ((day.ordinal() as i64 * 37 + base) % 41) - 20;
        let calls = (base * (100 + wobble) / 100 * (400 - back) / 400).max(1);
        let failures = calls * d.fail_pct / 100;
        let hour = 1 + (day.ordinal() % 8);
        let last_ok = Utc
            .from_utc_datetime(&day.and_hms_opt(hour, 17, 0).expect("time"))
            .min(now);
        app.store
            .put_token_day(
                token,
                &DayUse {
                    day,
                    calls,
                    failures,
                    last_ok_at: (failures < calls).then_some(last_ok),
                },
            )
            .await?;
    }
    Ok(())
}

async fn seed_reports(app: &AppState, now: DateTime<Utc>) -> anyhow::Result<()> {
    let year = now.year();
    let reports = [
        (
            "11150700MB15300034",
            "一、将旧版档案查询系统的数据迁入社会保障卡管理系统后停用；二、职业技能鉴定报名系统迁入市大数据中心；三、就业登记系统接入共享交换平台，推送就业登记事件。",
            vec![DataNeed {
                provider: "11150700MB15300021".into(),
                resource: "人口基础信息".into(),
                items: "姓名、公民身份号码、户籍地址".into(),
                purpose: "社会保障卡申领时核验身份与户籍".into(),
            }],
        ),
        (
            "11150700MB1530001X",
            "企业登记注册系统与个体工商户登记系统统一身份认证，食品经营许可审批系统年内迁入市大数据中心。",
            vec![DataNeed {
                provider: "11150700MB15300021".into(),
                resource: "人口基础信息".into(),
                items: "姓名、公民身份号码".into(),
                purpose: "法定代表人身份核验".into(),
            }],
        ),
        (
            "11150700MB15300021",
            "户籍业务管理系统保留专线，通过共享交换平台提供户籍信息查询接口。",
            Vec::new(),
        ),
    ];
    for (dept, plan, needs) in reports {
        if app.catalogue.department(dept).is_none()
            || app.store.self_inspection(dept, year).await?.is_some()
        {
            continue;
        }
        let needs: Vec<DataNeed> = needs
            .into_iter()
            .filter(|n| app.catalogue.department(&n.provider).is_some())
            .collect();
        app.store
            .upsert_self_inspection(&SelfInspection {
                department: dept.to_owned(),
                year,
                integration_plan: plan.to_owned(),
                data_needs: serde_json::to_value(&needs)?,
                submitted_by: "seed".into(),
                submitted_name: "演示数据".into(),
                submitted_at: now - Duration::days(20),
            })
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    fn system(status: &str) -> InfoSystem {
        InfoSystem {
            id: Uuid::nil(),
            department: "D".into(),
            name: "n".into(),
            function: "f".into(),
            users_scope: "u".into(),
            frequency: "daily".into(),
            approved_by: String::new(),
            approved_on: None,
            funding: String::new(),
            build_cost: 0,
            om_cost_per_year: 10_000,
            network: "intranet".into(),
            hosting: "data_centre".into(),
            token_id: None,
            push_endpoint: None,
            data_api: None,
            meant_to_connect: true,
            status: status.into(),
            merged_into: None,
            created_by: "x".into(),
            created_at: at("2026-01-01T00:00:00Z"),
            updated_at: at("2026-01-01T00:00:00Z"),
        }
    }

    fn t() -> Thresholds {
        Thresholds::from(&SupervisionSystemSettings::default())
    }

    fn months(v: &[(i64, i64)]) -> Vec<MonthVolume> {
        v.iter()
            .enumerate()
            .map(|(i, &(calls, failures))| MonthVolume {
                month: format!("2026-{:02}", i + 1),
                calls,
                failures,
            })
            .collect()
    }

    fn input<'a>(s: &'a InfoSystem, monthly: &'a [MonthVolume]) -> FlagInput<'a> {
        FlagInput {
            system: s,
            connected: true,
            last_ok: Some(at("2026-06-01T00:00:00Z")),
            monthly,
            outdone_by_overlap: false,
        }
    }

    #[test]
    fn a_busy_connected_system_has_no_flags() {
        let s = system("active");
        let m = months(&[(500, 5), (600, 3), (700, 2)]);
        let now = at("2026-06-02T00:00:00Z");
        assert!(flags(&input(&s, &m), now, &t()).is_empty());
    }

    #[test]
    fn idle_past_the_threshold_is_long_idle_and_not_a_day_before() {
        let s = system("active");
        let m = months(&[(500, 5), (600, 3), (700, 2)]);
        let i = input(&s, &m);
        // default threshold 90 days after 2026-06-01
        assert!(!flags(&i, at("2026-08-30T00:00:00Z"), &t()).contains(&Flag::LongIdle));
        assert!(flags(&i, at("2026-08-31T00:00:01Z"), &t()).contains(&Flag::LongIdle));
        // never exchanged: counted from registration
        let never = FlagInput {
            last_ok: None,
            ..i.clone()
        };
        assert!(flags(&never, at("2026-03-01T00:00:00Z"), &t()).is_empty());
        assert!(flags(&never, at("2026-04-02T00:00:00Z"), &t()).contains(&Flag::LongIdle));
        // a system not meant to connect is never idle
        let mut off = system("active");
        off.meant_to_connect = false;
        let i = FlagInput {
            system: &off,
            last_ok: None,
            ..input(&off, &m)
        };
        assert!(!flags(&i, at("2027-01-01T00:00:00Z"), &t()).contains(&Flag::LongIdle));
    }

    #[test]
    fn a_system_meant_to_connect_but_on_no_route_is_detached() {
        let s = system("active");
        let m = months(&[(500, 5), (600, 3), (700, 2)]);
        let i = FlagInput {
            connected: false,
            ..input(&s, &m)
        };
        assert_eq!(
            flags(&i, at("2026-06-02T00:00:00Z"), &t()),
            vec![Flag::Detached]
        );
    }

    #[test]
    fn an_overlap_with_a_busier_system_is_replaceable() {
        let s = system("active");
        let m = months(&[(500, 5), (600, 3), (700, 2)]);
        let i = FlagInput {
            outdone_by_overlap: true,
            ..input(&s, &m)
        };
        assert_eq!(
            flags(&i, at("2026-06-02T00:00:00Z"), &t()),
            vec![Flag::Replaceable]
        );
    }

    #[test]
    fn most_calls_failing_or_no_budget_for_long_is_unmaintained() {
        let s = system("active");
        let now = at("2026-06-02T00:00:00Z");
        // 50 % of 30 calls failed: unmaintained
        let m = months(&[(10, 5), (10, 5), (10, 5)]);
        assert!(flags(&input(&s, &m), now, &t()).contains(&Flag::Unmaintained));
        // the same share of too few calls says nothing
        let m = months(&[(2, 1), (2, 1), (2, 1)]);
        assert!(!flags(&input(&s, &m), now, &t()).contains(&Flag::Unmaintained));
        // just below the share
        let m = months(&[(100, 49), (0, 0), (0, 0)]);
        assert!(!flags(&input(&s, &m), now, &t()).contains(&Flag::Unmaintained));
        // no O&M budget and unchanged for over a year
        let mut s = system("active");
        s.om_cost_per_year = 0;
        let m = months(&[(500, 0), (500, 0), (500, 0)]);
        assert!(
            !flags(&input(&s, &m), at("2026-12-31T00:00:00Z"), &t()).contains(&Flag::Unmaintained)
        );
        assert!(
            flags(&input(&s, &m), at("2027-01-02T00:00:00Z"), &t()).contains(&Flag::Unmaintained)
        );
    }

    #[test]
    fn declared_rare_with_little_traffic_is_small_and_low() {
        let mut s = system("active");
        s.frequency = "rarely".into();
        let now = at("2026-06-02T00:00:00Z");
        // 30 a month on average is the threshold: 89 in three months is below
        let m = months(&[(30, 0), (30, 0), (29, 0)]);
        assert!(flags(&input(&s, &m), now, &t()).contains(&Flag::SmallLow));
        let m = months(&[(30, 0), (30, 0), (30, 0)]);
        assert!(!flags(&input(&s, &m), now, &t()).contains(&Flag::SmallLow));
        // used daily as declared: not small and low, whatever the traffic
        let s = system("active");
        let m = months(&[(0, 0), (0, 0), (1, 0)]);
        assert!(!flags(&input(&s, &m), now, &t()).contains(&Flag::SmallLow));
    }

    #[test]
    fn cleared_and_merged_systems_have_no_flags() {
        let m = months(&[(0, 0)]);
        for st in ["cleared", "merged"] {
            let s = system(st);
            let i = FlagInput {
                connected: false,
                last_ok: None,
                ..input(&s, &m)
            };
            assert!(flags(&i, at("2030-01-01T00:00:00Z"), &t()).is_empty());
        }
    }

    #[test]
    fn systems_overlap_only_on_a_shared_route() {
        let mut a = system("active");
        let mut b = system("active");
        a.token_id = Some(Uuid::from_u128(1));
        b.token_id = Some(Uuid::from_u128(2));
        let token = vec!["token".to_owned()];
        let push = vec!["push".to_owned()];
        let both = vec!["token".to_owned(), "push".to_owned()];
        assert!(!same_route((&a, &token), (&b, &token)), "two tokens");
        b.token_id = a.token_id;
        assert!(same_route((&a, &token), (&b, &token)), "one token");
        assert!(!same_route((&a, &token), (&b, &push)));
        b.token_id = None;
        assert!(same_route((&a, &both), (&b, &push)), "one push endpoint");
        assert!(!same_route((&a, &[]), (&b, &[])));
    }

    #[test]
    fn flags_move_active_to_flagged_and_traffic_back() {
        assert_eq!(next_status("active", &[Flag::LongIdle]), Some("flagged"));
        assert_eq!(next_status("flagged", &[]), Some("active"));
        assert_eq!(next_status("flagged", &[Flag::LongIdle]), None);
        assert_eq!(next_status("active", &[]), None);
        assert_eq!(next_status("kept", &[Flag::LongIdle]), None);
        assert_eq!(next_status("cleared", &[]), None);
        assert_eq!(decided_status("clear"), Some("cleared"));
        assert_eq!(decided_status("merge"), Some("merged"));
        assert_eq!(decided_status("keep"), Some("kept"));
        assert_eq!(decided_status("burn"), None);
    }

    #[test]
    fn month_bounds_step_over_the_year() {
        let b = month_bounds(at("2026-02-14T10:00:00Z"), 3);
        let s: Vec<String> = b.iter().map(|d| d.format("%Y-%m-%d").to_string()).collect();
        assert_eq!(s, ["2025-12-01", "2026-01-01", "2026-02-01", "2026-03-01"]);
        let days = [
            DayUse {
                day: NaiveDate::from_ymd_opt(2025, 11, 30).expect("d"),
                calls: 9,
                failures: 9,
                last_ok_at: None,
            },
            DayUse {
                day: NaiveDate::from_ymd_opt(2025, 12, 31).expect("d"),
                calls: 3,
                failures: 1,
                last_ok_at: None,
            },
            DayUse {
                day: NaiveDate::from_ymd_opt(2026, 2, 1).expect("d"),
                calls: 5,
                failures: 0,
                last_ok_at: None,
            },
            DayUse {
                day: NaiveDate::from_ymd_opt(2026, 2, 14).expect("d"),
                calls: 2,
                failures: 2,
                last_ok_at: None,
            },
        ];
        assert_eq!(monthly_from_days(&days, &b), vec![(3, 1), (0, 0), (7, 2)]);
        assert_eq!(recent(&months(&[(1, 1), (2, 0), (3, 1)]), 2), (5, 1));
        assert_eq!(failure_share(0, 0), None);
    }

    #[test]
    fn input_is_checked_field_by_field() {
        let bad = SystemInput {
            name: "  ".into(),
            frequency: "hourly".into(),
            network: "x".into(),
            hosting: "cloud".into(),
            build_cost: -1,
            token_id: Some(Uuid::nil()),
            push_endpoint: Some("ftp://x".into()),
            ..SystemInput::default()
        };
        let errors = validate(&bad, &[]).expect_err("invalid");
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        for f in [
            "name",
            "function",
            "users_scope",
            "frequency",
            "network",
            "hosting",
            "build_cost",
            "token_id",
            "push_endpoint",
        ] {
            assert!(fields.contains(&f), "{f} in {fields:?}");
        }
        let good = SystemInput {
            name: " 系统 ".into(),
            function: "f".into(),
            users_scope: "u".into(),
            frequency: "daily".into(),
            network: "private".into(),
            hosting: "own_room".into(),
            token_id: Some(Uuid::nil()),
            push_endpoint: Some(" ".into()),
            ..SystemInput::default()
        };
        let ok = validate(&good, &[Uuid::nil()]).expect("valid");
        assert_eq!(ok.name, "系统");
        assert_eq!(ok.push_endpoint, None);
    }

    #[test]
    fn the_demo_has_two_to_four_systems_in_each_of_ten_departments_and_one_zombie() {
        let mut n: BTreeMap<&str, usize> = BTreeMap::new();
        for d in demo_systems() {
            *n.entry(d.department).or_default() += 1;
        }
        assert_eq!(n.len(), 10, "{n:?}");
        assert!(n.values().all(|c| (2..=4).contains(c)), "{n:?}");
        assert_eq!(
            demo_systems()
                .iter()
                .filter(|d| d.name == DEMO_ZOMBIE)
                .count(),
            1
        );
    }

    #[test]
    fn the_report_table_has_a_header_and_a_row_per_system() {
        let s = system("flagged");
        let a = SystemAssessment {
            system: system_json(&s),
            connected: false,
            routes: Vec::new(),
            last_ok: None,
            monthly: months(&[(3, 0)]),
            failure_share: None,
            services: Vec::new(),
            overlaps: Vec::new(),
            flags: vec![Flag::LongIdle, Flag::Detached],
        };
        let rows = report_rows(crate::domain::lang::Lang::En, &[a], |k| k.to_owned());
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].len(), rows[1].len());
        assert_eq!(rows[1][0], "n");
        assert_eq!(rows[1][14], "flagged");
        assert_eq!(
            rows[1][15],
            "idle for long; detached from the business process"
        );
        let csv = to_csv(&[("t".into(), rows.clone())]).expect("csv");
        assert!(csv.starts_with(&[0xEF, 0xBB, 0xBF]));
        let xlsx = to_xlsx(&[("t".into(), rows)]).expect("xlsx");
        assert!(xlsx.starts_with(b"PK"), "a zip file");
    }
}

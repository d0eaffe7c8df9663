//! Assessment figures (考核评价, the plan's 三(三)): per department and city-wide, from the
//! records the gateway keeps rather than from forms.
//!
//! | figure | from | rate |
//! | --- | --- | --- |
//! | systems integrated (系统整合) | registered systems, not cleared or merged | connected (a token, push endpoint or data API) ÷ registered |
//! | connectivity (系统联通率) | systems meant to connect | a successful exchange (token use, a 2xx push to its endpoint) in the 30 days before the period's end ÷ meant to connect |
//! | shared items published (共享数据项) | the resource catalogue | items of the resources the department provides |
//! | shared items consumed | the data-access trail | reads for the department's services |
//! | collaborative applications (协同应用) | the catalogue and cases | services prefilling or substituting from another department's resource; cases of joint (联办) services |
//! | key-task progress (重点任务进展) | the latest monthly progress report | mean percent over its tasks |
//! | on time (按时办结率) | concluded cases with a promised date | concluded on or before it ÷ concluded |
//! | reuse (免填 / 免提交) | cases lodged | fields prefilled ÷ fields filled; materials substituted ÷ materials |
//! | rating (好差评) | rated cases | mean of 1–5 |
//!
//! The counts come from SQL aggregates (`store::sup_figures`); this file holds the pure
//! part: rates, the weighted score, the ranking with its ties, and the months.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, TimeZone, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::config::AssessmentSettings;
use crate::domain::catalogue::Catalogue;
use crate::domain::lang::Lang;
use crate::store::sup_figures::{AssessmentData, Window};
use crate::store::{Store, StoreResult};

/// How far back a successful exchange makes a system "connected" for the connectivity rate.
pub const CONNECTIVITY_DAYS: i64 = 30;

/// The raw counts of one department (or the city) over a period: what the rates are
/// computed from, shown beside them so every rate can be checked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct Counts {
    /// Registered systems still in service (not cleared, not merged).
    pub systems_registered: i64,
    /// Of those, connected to the exchange (a token, a push endpoint or a data API).
    pub systems_connected: i64,
    /// Systems meant to connect (the connectivity denominator).
    pub systems_meant: i64,
    /// Of those, with a successful exchange in the 30 days before the period's end.
    pub systems_live: i64,
    /// Data items of the catalogue resources the department provides.
    pub items_published: i64,
    /// Reads of shared data for the department's services in the period.
    pub reads_consumed: i64,
    /// The department's services that prefill or substitute from another department's resource.
    pub collaborative_services: i64,
    /// Cases of joint services (routed to more than one department) lodged in the period.
    pub joint_cases: i64,
    /// Cases lodged in the period.
    pub cases: i64,
    /// Tasks in the latest progress report.
    pub tasks_reported: i64,
    /// Sum of their percents.
    pub task_percent_sum: i64,
    /// The month the latest progress report is about (`YYYY-MM`).
    pub report_month: Option<String>,
    /// Cases concluded in the period that had a promised date.
    pub concluded_with_due: i64,
    /// Of those, concluded on or before it.
    pub concluded_on_time: i64,
    /// Form fields with a value, over the cases lodged.
    pub fields_filled: i64,
    /// Of which prefilled from shared data.
    pub fields_prefilled: i64,
    /// Materials, over the cases lodged.
    pub materials: i64,
    /// Of which not uploaded: shared data or an e-licence stood in (免提交).
    pub materials_substituted: i64,
    /// Cases rated in the period.
    pub rated: i64,
    /// Sum of their ratings.
    pub rating_sum: i64,
}

impl Counts {
    /// Adds another department's counts (for the city-wide figures).
    pub fn add(&mut self, o: &Counts) {
        self.systems_registered += o.systems_registered;
        self.systems_connected += o.systems_connected;
        self.systems_meant += o.systems_meant;
        self.systems_live += o.systems_live;
        self.items_published += o.items_published;
        self.reads_consumed += o.reads_consumed;
        self.collaborative_services += o.collaborative_services;
        self.joint_cases += o.joint_cases;
        self.cases += o.cases;
        self.tasks_reported += o.tasks_reported;
        self.task_percent_sum += o.task_percent_sum;
        self.concluded_with_due += o.concluded_with_due;
        self.concluded_on_time += o.concluded_on_time;
        self.fields_filled += o.fields_filled;
        self.fields_prefilled += o.fields_prefilled;
        self.materials += o.materials;
        self.materials_substituted += o.materials_substituted;
        self.rated += o.rated;
        self.rating_sum += o.rating_sum;
        if o.report_month > self.report_month {
            self.report_month = o.report_month.clone();
        }
    }

    /// The rates of these counts.
    pub fn rates(&self) -> Rates {
        Rates {
            integration: rate(self.systems_connected, self.systems_registered),
            connectivity: rate(self.systems_live, self.systems_meant),
            task_progress: (self.tasks_reported > 0)
                .then(|| round(self.task_percent_sum as f64 / self.tasks_reported as f64, 1)),
            on_time: rate(self.concluded_on_time, self.concluded_with_due),
            prefill: rate(self.fields_prefilled, self.fields_filled),
            substitution: rate(self.materials_substituted, self.materials),
            rating: (self.rated > 0).then(|| round(self.rating_sum as f64 / self.rated as f64, 2)),
        }
    }
}

/// The rates of one department or the city; none where there is nothing to divide by.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct Rates {
    /// Systems integrated: connected ÷ registered (0–1).
    pub integration: Option<f64>,
    /// Connectivity: live ÷ meant to connect (0–1).
    pub connectivity: Option<f64>,
    /// Key-task progress: mean percent of the latest report (0–100).
    pub task_progress: Option<f64>,
    /// On-time rate (0–1).
    pub on_time: Option<f64>,
    /// Share of fields prefilled (0–1).
    pub prefill: Option<f64>,
    /// Share of materials not uploaded, 免提交 (0–1).
    pub substitution: Option<f64>,
    /// Rating average (1–5).
    pub rating: Option<f64>,
}

/// `part ÷ whole` to four decimals, or none of nothing.
pub fn rate(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| round(part as f64 / whole as f64, 4))
}

fn round(v: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (v * f).round() / f
}

/// The weights of the score, in points (shown on the ranking page).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, ToSchema)]
pub struct Weights {
    /// Systems integrated.
    pub integration: u32,
    /// Connectivity.
    pub connectivity: u32,
    /// Shared data items published and consumed.
    pub shared_items: u32,
    /// Collaborative applications.
    pub collaboration: u32,
    /// Key-task progress.
    pub progress: u32,
    /// On-time rate.
    pub on_time: u32,
    /// Prefill and 免提交 reuse.
    pub reuse: u32,
    /// Rating.
    pub rating: u32,
}

impl From<&AssessmentSettings> for Weights {
    fn from(s: &AssessmentSettings) -> Weights {
        Weights {
            integration: s.assessment_weight_integration,
            connectivity: s.assessment_weight_connectivity,
            shared_items: s.assessment_weight_shared_items,
            collaboration: s.assessment_weight_collaboration,
            progress: s.assessment_weight_progress,
            on_time: s.assessment_weight_on_time,
            reuse: s.assessment_weight_reuse,
            rating: s.assessment_weight_rating,
        }
    }
}

impl Weights {
    fn total(&self) -> u32 {
        self.integration
            + self.connectivity
            + self.shared_items
            + self.collaboration
            + self.progress
            + self.on_time
            + self.reuse
            + self.rating
    }
}

/// The largest counts among the departments, against which the counts without a natural
/// denominator (items, reads, collaborative services, joint cases) are scored.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Best {
    /// Most items published.
    pub items_published: i64,
    /// Most reads consumed.
    pub reads_consumed: i64,
    /// Most collaborative services.
    pub collaborative_services: i64,
    /// Most joint cases.
    pub joint_cases: i64,
}

impl Best {
    /// The best of each count over the departments.
    pub fn of<'a>(all: impl IntoIterator<Item = &'a Counts>) -> Best {
        all.into_iter().fold(Best::default(), |b, c| Best {
            items_published: b.items_published.max(c.items_published),
            reads_consumed: b.reads_consumed.max(c.reads_consumed),
            collaborative_services: b.collaborative_services.max(c.collaborative_services),
            joint_cases: b.joint_cases.max(c.joint_cases),
        })
    }
}

/// Each scored part of a department's figures, from 0 to 1 (a figure without data
/// scores 0: what is not done earns nothing).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, ToSchema)]
pub struct Components {
    /// Systems integrated.
    pub integration: f64,
    /// Connectivity.
    pub connectivity: f64,
    /// Items published and consumed, each against the best department, averaged.
    pub shared_items: f64,
    /// Collaborative services and joint cases, each against the best department, averaged.
    pub collaboration: f64,
    /// Key-task progress.
    pub progress: f64,
    /// On-time rate.
    pub on_time: f64,
    /// Prefill and 免提交 shares, averaged over those with data.
    pub reuse: f64,
    /// Rating, 1 → 0 and 5 → 1.
    pub rating: f64,
}

fn relative(v: i64, best: i64) -> f64 {
    if best > 0 {
        (v as f64 / best as f64).clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// The scored parts of one department's counts.
pub fn components(c: &Counts, best: &Best) -> Components {
    let r = c.rates();
    let reuse: Vec<f64> = [r.prefill, r.substitution].into_iter().flatten().collect();
    Components {
        integration: r.integration.unwrap_or(0.0),
        connectivity: r.connectivity.unwrap_or(0.0),
        shared_items: (relative(c.items_published, best.items_published)
            + relative(c.reads_consumed, best.reads_consumed))
            / 2.0,
        collaboration: (relative(c.collaborative_services, best.collaborative_services)
            + relative(c.joint_cases, best.joint_cases))
            / 2.0,
        progress: r
            .task_progress
            .map(|p| (p / 100.0).clamp(0.0, 1.0))
            .unwrap_or(0.0),
        on_time: r.on_time.unwrap_or(0.0),
        reuse: if reuse.is_empty() {
            0.0
        } else {
            reuse.iter().sum::<f64>() / reuse.len() as f64
        },
        rating: r
            .rating
            .map(|a| ((a - 1.0) / 4.0).clamp(0.0, 1.0))
            .unwrap_or(0.0),
    }
}

/// The weighted score, 0–100 to one decimal.
pub fn score(c: &Components, w: &Weights) -> f64 {
    let total = w.total();
    if total == 0 {
        return 0.0;
    }
    let sum = c.integration * f64::from(w.integration)
        + c.connectivity * f64::from(w.connectivity)
        + c.shared_items * f64::from(w.shared_items)
        + c.collaboration * f64::from(w.collaboration)
        + c.progress * f64::from(w.progress)
        + c.on_time * f64::from(w.on_time)
        + c.reuse * f64::from(w.reuse)
        + c.rating * f64::from(w.rating);
    round(sum * 100.0 / f64::from(total), 1)
}

/// Ranks scores (highest first): equal scores (to the shown decimal) share a rank and
/// the next rank skips (1, 1, 3). Answers each input's rank and the order to list them
/// in: by score, then by input order (the catalogue's order of departments).
pub fn rank(scores: &[f64]) -> (Vec<u32>, Vec<usize>) {
    let tenths: Vec<i64> = scores.iter().map(|s| (s * 10.0).round() as i64).collect();
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| tenths[b].cmp(&tenths[a]).then(a.cmp(&b)));
    let mut ranks = vec![0u32; scores.len()];
    for (pos, &i) in order.iter().enumerate() {
        ranks[i] = match pos {
            0 => 1,
            _ if tenths[order[pos - 1]] == tenths[i] => ranks[order[pos - 1]],
            _ => pos as u32 + 1,
        };
    }
    (ranks, order)
}

// ---- periods --------------------------------------------------------------------------

fn china() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset")
}

/// Why a month parameter was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MonthError {
    /// Not `YYYY-MM`.
    #[error("not a month (YYYY-MM)")]
    Malformed,
    /// After the current month, or before 2000.
    #[error("out of range")]
    OutOfRange,
}

/// The first day of a `YYYY-MM` month, checked to lie between 2000 and the month of `now`
/// (China time).
pub fn parse_month(s: &str, now: DateTime<Utc>) -> Result<NaiveDate, MonthError> {
    let s = s.trim();
    let (y, m) = s.split_once('-').ok_or(MonthError::Malformed)?;
    if y.len() != 4 || m.len() != 2 {
        return Err(MonthError::Malformed);
    }
    let y: i32 = y.parse().map_err(|_| MonthError::Malformed)?;
    let m: u32 = m.parse().map_err(|_| MonthError::Malformed)?;
    let first = NaiveDate::from_ymd_opt(y, m, 1).ok_or(MonthError::Malformed)?;
    if y < 2000 || first > this_month(now) {
        return Err(MonthError::OutOfRange);
    }
    Ok(first)
}

/// The first day of the month `now` falls in (China time).
pub fn this_month(now: DateTime<Utc>) -> NaiveDate {
    let d = now.with_timezone(&china()).date_naive();
    d.with_day(1).unwrap_or(d)
}

/// The first day of the month after `first`.
pub fn next_month(first: NaiveDate) -> NaiveDate {
    let (y, m) = if first.month() == 12 {
        (first.year() + 1, 1)
    } else {
        (first.year(), first.month() + 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1).unwrap_or(first)
}

/// The first day of the month before `first`.
pub fn previous_month(first: NaiveDate) -> NaiveDate {
    let (y, m) = if first.month() == 1 {
        (first.year() - 1, 12)
    } else {
        (first.year(), first.month() - 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1).unwrap_or(first)
}

/// The `n` months up to and including the month of `now`, oldest first.
pub fn last_months(now: DateTime<Utc>, n: usize) -> Vec<NaiveDate> {
    let mut out = Vec::with_capacity(n);
    let mut m = this_month(now);
    for _ in 0..n {
        out.push(m);
        m = previous_month(m);
    }
    out.reverse();
    out
}

fn midnight(d: NaiveDate) -> DateTime<Utc> {
    china()
        .from_local_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default())
        .single()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

/// What a period covers in the store's terms.
pub fn month_window(first: NaiveDate, now: DateTime<Utc>) -> Window {
    let next = next_month(first);
    let to = midnight(next).min(now);
    Window {
        from: midnight(first),
        to,
        from_day: first,
        to_day: next,
        live_since: to - Duration::days(CONNECTIVITY_DAYS),
        report_month: first.format("%Y-%m").to_string(),
    }
}

/// Everything up to now: outcomes over all records, connectivity over the last 30 days,
/// the latest progress report.
pub fn live_window(now: DateTime<Utc>) -> Window {
    let start = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or_default();
    Window {
        from: midnight(start),
        to: now,
        from_day: start,
        to_day: now.with_timezone(&china()).date_naive() + Duration::days(1),
        live_since: now - Duration::days(CONNECTIVITY_DAYS),
        report_month: this_month(now).format("%Y-%m").to_string(),
    }
}

// ---- counts from the aggregates and the catalogue ------------------------------------

/// A department's services that prefill fields or substitute materials from a resource
/// another department provides, with those resources' codes.
pub fn collaborative_services(cat: &Catalogue, department: &str) -> Vec<(String, Vec<String>)> {
    cat.services()
        .iter()
        .filter(|s| s.department == department)
        .filter_map(|s| {
            let mut used: Vec<String> = s
                .fields
                .iter()
                .filter_map(|f| f.prefill.as_deref())
                .chain(s.materials.iter().filter_map(|m| m.substitute.as_deref()))
                .filter_map(|b| cat.binding(b))
                .filter(|(r, _)| r.provider != department)
                .map(|(r, _)| r.code.clone())
                .collect();
            used.sort();
            used.dedup();
            (!used.is_empty()).then(|| (s.code.clone(), used))
        })
        .collect()
}

/// Items of the resources a department provides.
pub fn items_published(cat: &Catalogue, department: &str) -> i64 {
    cat.resources()
        .iter()
        .filter(|r| r.provider == department)
        .map(|r| r.items.len() as i64)
        .sum()
}

/// The mean-percent inputs of a progress report's tasks (`[{task, percent, note}]`):
/// how many tasks and the sum of their percents (clamped to 0–100).
pub fn task_percents(tasks: &serde_json::Value) -> (i64, i64) {
    let Some(list) = tasks.as_array() else {
        return (0, 0);
    };
    list.iter()
        .filter_map(|t| t.get("percent").and_then(|p| p.as_f64()))
        .fold((0, 0), |(n, sum), p| {
            (n + 1, sum + p.clamp(0.0, 100.0).round() as i64)
        })
}

/// Each catalogue department's counts over a period, from the aggregates and the
/// catalogue; departments in the records but not in the catalogue are left out.
pub fn department_counts(cat: &Catalogue, data: &AssessmentData) -> Vec<(String, Counts)> {
    let mut by: HashMap<&str, Counts> = cat
        .departments()
        .iter()
        .map(|d| {
            (
                d.uscc.as_str(),
                Counts {
                    items_published: items_published(cat, &d.uscc),
                    collaborative_services: collaborative_services(cat, &d.uscc).len() as i64,
                    ..Counts::default()
                },
            )
        })
        .collect();
    for s in &data.systems {
        if let Some(c) = by.get_mut(s.department.as_str()) {
            c.systems_registered = s.registered;
            c.systems_connected = s.connected;
            c.systems_meant = s.meant;
            c.systems_live = s.live;
        }
    }
    for k in &data.cases {
        if let Some(c) = by.get_mut(k.department.as_str()) {
            c.cases += k.cases;
            if cat
                .service(&k.service_code)
                .is_some_and(|s| s.routing.departments.len() > 1)
            {
                c.joint_cases += k.cases;
            }
            c.concluded_with_due += k.concluded_with_due;
            c.concluded_on_time += k.concluded_on_time;
            c.fields_filled += k.fields_filled;
            c.fields_prefilled += k.fields_prefilled;
            c.materials += k.materials;
            c.materials_substituted += k.materials_substituted;
            c.rated += k.rated;
            c.rating_sum += k.rating_sum;
        }
    }
    for r in &data.reads {
        let dept = r
            .service_code
            .as_deref()
            .and_then(|code| cat.service(code))
            .map(|s| s.department.as_str());
        if let Some(c) = dept.and_then(|d| by.get_mut(d)) {
            c.reads_consumed += r.n;
        }
    }
    for r in &data.reports {
        if let Some(c) = by.get_mut(r.department.as_str()) {
            let (n, sum) = task_percents(&r.tasks);
            c.tasks_reported = n;
            c.task_percent_sum = sum;
            c.report_month = Some(r.month.clone());
        }
    }
    cat.departments()
        .iter()
        .map(|d| {
            (
                d.uscc.clone(),
                by.remove(d.uscc.as_str()).unwrap_or_default(),
            )
        })
        .collect()
}

/// One department's place in the ranking.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Ranked {
    /// The department's USCC.
    pub department: String,
    /// 1 is best; equal scores share a rank.
    pub rank: u32,
    /// 0–100.
    pub score: f64,
    /// The counts.
    pub counts: Counts,
    /// The rates.
    pub rates: Rates,
    /// The scored parts (0–1).
    pub components: Components,
}

/// The departments ranked, best first, and the city-wide counts.
pub fn ranking(depts: Vec<(String, Counts)>, w: &Weights) -> (Vec<Ranked>, Counts) {
    let best = Best::of(depts.iter().map(|(_, c)| c));
    let mut city = Counts::default();
    let parts: Vec<Components> = depts
        .iter()
        .map(|(_, c)| {
            city.add(c);
            components(c, &best)
        })
        .collect();
    let scores: Vec<f64> = parts.iter().map(|p| score(p, w)).collect();
    let (ranks, order) = rank(&scores);
    let mut slots: Vec<Option<(String, Counts)>> = depts.into_iter().map(Some).collect();
    let list = order
        .into_iter()
        .filter_map(|i| {
            let (department, counts) = slots[i].take()?;
            Some(Ranked {
                department,
                rank: ranks[i],
                score: scores[i],
                rates: counts.rates(),
                counts,
                components: parts[i],
            })
        })
        .collect();
    (list, city)
}

// ---- use cases ------------------------------------------------------------------------

/// The figures of a period: the departments ranked and the city-wide counts.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Assessment {
    /// `YYYY-MM`, or `live` (everything up to now).
    pub period: String,
    /// The weights of the score.
    pub weights: Weights,
    /// City-wide counts.
    pub city: Counts,
    /// City-wide rates.
    pub city_rates: Rates,
    /// Departments, best first.
    pub departments: Vec<Ranked>,
}

/// Computes the figures of a period from the store and the catalogue.
pub async fn assess(
    store: &dyn Store,
    cat: &Catalogue,
    weights: &Weights,
    period: &str,
    w: &Window,
) -> StoreResult<Assessment> {
    let data = store.assessment_data(w).await?;
    let (departments, city) = ranking(department_counts(cat, &data), weights);
    Ok(Assessment {
        period: period.to_owned(),
        weights: *weights,
        city_rates: city.rates(),
        city,
        departments,
    })
}

/// One month of the trends: the city-wide rates and each department's score and rank.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MonthFigures {
    /// `YYYY-MM`.
    pub month: String,
    /// City-wide rates of the month.
    pub city_rates: Rates,
    /// City-wide counts of the month.
    pub city: Counts,
    /// Each department's score and rank, in catalogue order.
    pub departments: Vec<MonthScore>,
}

/// A department's score in one month.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MonthScore {
    /// USCC.
    pub department: String,
    /// 0–100.
    pub score: f64,
    /// Its rank that month.
    pub rank: u32,
}

/// The figures of the last `months` months (the current one up to now), oldest first.
pub async fn trends(
    store: &dyn Store,
    cat: &Catalogue,
    weights: &Weights,
    now: DateTime<Utc>,
    months: usize,
) -> StoreResult<Vec<MonthFigures>> {
    let mut out = Vec::with_capacity(months);
    for m in last_months(now, months) {
        let label = m.format("%Y-%m").to_string();
        let a = assess(store, cat, weights, &label, &month_window(m, now)).await?;
        let mut departments: Vec<MonthScore> = a
            .departments
            .iter()
            .map(|r| MonthScore {
                department: r.department.clone(),
                score: r.score,
                rank: r.rank,
            })
            .collect();
        let pos = |d: &str| cat.departments().iter().position(|x| x.uscc == d);
        departments.sort_by_key(|d| pos(&d.department));
        out.push(MonthFigures {
            month: label,
            city_rates: a.city_rates,
            city: a.city,
            departments,
        });
    }
    Ok(out)
}

// ---- the monthly export ---------------------------------------------------------------

/// A cell of the export.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// Text.
    Text(String),
    /// A whole number.
    Int(i64),
    /// A number (a rate in percent, a score, an average).
    Num(f64),
    /// No value (nothing to divide by).
    Empty,
}

fn pct(v: Option<f64>) -> Cell {
    v.map(|x| Cell::Num(round(x * 100.0, 1)))
        .unwrap_or(Cell::Empty)
}

/// The export's column headers, in the reader's language.
pub fn export_headers(lang: Lang) -> Vec<&'static str> {
    const H: [(&str, &str); 29] = [
        ("排名", "rank"),
        ("统一社会信用代码", "uscc"),
        ("部门", "department"),
        ("综合得分", "score"),
        ("登记系统数", "systems_registered"),
        ("已接入系统数", "systems_connected"),
        ("系统整合率(%)", "integration_percent"),
        ("应联通系统数", "systems_meant"),
        ("30日内联通系统数", "systems_live"),
        ("系统联通率(%)", "connectivity_percent"),
        ("发布共享数据项", "items_published"),
        ("调用共享数据次数", "reads_consumed"),
        ("协同应用事项数", "collaborative_services"),
        ("联办件数", "joint_cases"),
        ("重点任务进展(%)", "task_progress_percent"),
        ("进展报告月份", "report_month"),
        ("受理办件数", "cases"),
        ("有承诺时限的办结件", "concluded_with_due"),
        ("按时办结件", "concluded_on_time"),
        ("按时办结率(%)", "on_time_percent"),
        ("填写字段数", "fields_filled"),
        ("预填字段数", "fields_prefilled"),
        ("预填率(%)", "prefill_percent"),
        ("材料数", "materials"),
        ("免提交材料数", "materials_substituted"),
        ("免提交率(%)", "substitution_percent"),
        ("评价数", "rated"),
        ("评价平均分", "rating_average"),
        ("", ""),
    ];
    H[..28].iter().map(|(zh, en)| lang.pick(zh, en)).collect()
}

fn export_row(rank: Cell, uscc: &str, name: &str, score: Cell, c: &Counts) -> Vec<Cell> {
    let r = c.rates();
    vec![
        rank,
        Cell::Text(uscc.to_owned()),
        Cell::Text(name.to_owned()),
        score,
        Cell::Int(c.systems_registered),
        Cell::Int(c.systems_connected),
        pct(r.integration),
        Cell::Int(c.systems_meant),
        Cell::Int(c.systems_live),
        pct(r.connectivity),
        Cell::Int(c.items_published),
        Cell::Int(c.reads_consumed),
        Cell::Int(c.collaborative_services),
        Cell::Int(c.joint_cases),
        r.task_progress.map(Cell::Num).unwrap_or(Cell::Empty),
        c.report_month
            .clone()
            .map(Cell::Text)
            .unwrap_or(Cell::Empty),
        Cell::Int(c.cases),
        Cell::Int(c.concluded_with_due),
        Cell::Int(c.concluded_on_time),
        pct(r.on_time),
        Cell::Int(c.fields_filled),
        Cell::Int(c.fields_prefilled),
        pct(r.prefill),
        Cell::Int(c.materials),
        Cell::Int(c.materials_substituted),
        pct(r.substitution),
        Cell::Int(c.rated),
        r.rating.map(Cell::Num).unwrap_or(Cell::Empty),
    ]
}

/// The export's rows: one per department in rank order, then the city-wide row.
pub fn export_rows(a: &Assessment, cat: &Catalogue, lang: Lang) -> Vec<Vec<Cell>> {
    let mut rows: Vec<Vec<Cell>> = a
        .departments
        .iter()
        .map(|r| {
            let name = cat
                .department(&r.department)
                .map(|d| lang.pick(&d.name, &d.name_en).to_owned())
                .unwrap_or_else(|| r.department.clone());
            export_row(
                Cell::Int(i64::from(r.rank)),
                &r.department,
                &name,
                Cell::Num(r.score),
                &r.counts,
            )
        })
        .collect();
    rows.push(export_row(
        Cell::Empty,
        "",
        lang.pick("全市", "City-wide"),
        Cell::Empty,
        &a.city,
    ));
    rows
}

/// The export as CSV (UTF-8 with a byte-order mark, so spreadsheet programs read the
/// Chinese names right).
pub fn export_csv(headers: &[&str], rows: &[Vec<Cell>]) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(b"\xEF\xBB\xBF".to_vec());
    w.write_record(headers)?;
    for row in rows {
        w.write_record(row.iter().map(|c| match c {
            Cell::Text(s) => s.clone(),
            Cell::Int(n) => n.to_string(),
            Cell::Num(x) => x.to_string(),
            Cell::Empty => String::new(),
        }))?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

/// The export as an XLSX workbook of one sheet.
pub fn export_xlsx(
    sheet: &str,
    headers: &[&str],
    rows: &[Vec<Cell>],
) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{Format, Workbook};
    let mut book = Workbook::new();
    let ws = book.add_worksheet();
    ws.set_name(sheet)?;
    let bold = Format::new().set_bold();
    for (col, h) in headers.iter().enumerate() {
        ws.write_string_with_format(0, col as u16, *h, &bold)?;
    }
    for (i, row) in rows.iter().enumerate() {
        let r = i as u32 + 1;
        for (col, c) in row.iter().enumerate() {
            let col = col as u16;
            match c {
                Cell::Text(s) => {
                    ws.write_string(r, col, s)?;
                }
                Cell::Int(n) => {
                    ws.write_number(r, col, *n as f64)?;
                }
                Cell::Num(x) => {
                    ws.write_number(r, col, *x)?;
                }
                Cell::Empty => {}
            }
        }
    }
    ws.set_freeze_panes(1, 3)?;
    book.save_to_buffer()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weights(on_time: u32, reuse: u32) -> Weights {
        Weights {
            integration: 0,
            connectivity: 0,
            shared_items: 0,
            collaboration: 0,
            progress: 0,
            on_time,
            reuse,
            rating: 0,
        }
    }

    #[test]
    fn rates_divide_and_nothing_divides_to_none() {
        assert_eq!(rate(1, 3), Some(0.3333));
        assert_eq!(rate(0, 0), None);
        let c = Counts {
            systems_registered: 4,
            systems_connected: 3,
            systems_meant: 2,
            systems_live: 1,
            tasks_reported: 3,
            task_percent_sum: 200,
            concluded_with_due: 8,
            concluded_on_time: 6,
            fields_filled: 10,
            fields_prefilled: 4,
            materials: 5,
            materials_substituted: 5,
            rated: 3,
            rating_sum: 13,
            ..Counts::default()
        };
        let r = c.rates();
        assert_eq!(r.integration, Some(0.75));
        assert_eq!(r.connectivity, Some(0.5));
        assert_eq!(r.task_progress, Some(66.7));
        assert_eq!(r.on_time, Some(0.75));
        assert_eq!(r.prefill, Some(0.4));
        assert_eq!(r.substitution, Some(1.0));
        assert_eq!(r.rating, Some(4.33));
        assert_eq!(Counts::default().rates(), Rates::default());
    }

    #[test]
    fn city_counts_are_the_sum_and_keep_the_latest_report_month() {
        let mut city = Counts::default();
        city.add(&Counts {
            systems_meant: 2,
            systems_live: 1,
            report_month: Some("2026-10".into()),
            ..Counts::default()
        });
        city.add(&Counts {
            systems_meant: 1,
            systems_live: 1,
            report_month: Some("2026-11".into()),
            ..Counts::default()
        });
        city.add(&Counts::default());
        assert_eq!(city.systems_meant, 3);
        assert_eq!(city.rates().connectivity, Some(0.6667));
        assert_eq!(city.report_month.as_deref(), Some("2026-11"));
    }

    #[test]
    fn components_score_against_the_best_department_and_missing_data_scores_zero() {
        let best = Best {
            items_published: 10,
            reads_consumed: 0,
            collaborative_services: 2,
            joint_cases: 4,
        };
        let c = Counts {
            items_published: 5,
            reads_consumed: 0,
            collaborative_services: 2,
            joint_cases: 1,
            rated: 2,
            rating_sum: 6,
            fields_filled: 10,
            fields_prefilled: 5,
            ..Counts::default()
        };
        let p = components(&c, &best);
        assert_eq!(p.shared_items, 0.25); // (5/10 + nothing to compare) / 2
        assert_eq!(p.collaboration, 0.625); // (2/2 + 1/4) / 2
        assert_eq!(p.rating, 0.5); // average 3
        assert_eq!(p.reuse, 0.5); // prefill only: no materials
        assert_eq!(p.integration, 0.0);
        assert_eq!(p.on_time, 0.0);
    }

    #[test]
    fn the_score_weighs_the_components() {
        let p = Components {
            on_time: 1.0,
            reuse: 0.5,
            ..Components::default()
        };
        assert_eq!(score(&p, &weights(1, 1)), 75.0);
        assert_eq!(score(&p, &weights(3, 1)), 87.5);
        assert_eq!(score(&p, &weights(0, 0)), 0.0);
    }

    #[test]
    fn equal_scores_share_a_rank_and_the_next_rank_skips() {
        let (ranks, order) = rank(&[50.0, 80.04, 80.0, 10.0, 50.0]);
        assert_eq!(ranks, vec![3, 1, 1, 5, 3]);
        assert_eq!(order, vec![1, 2, 0, 4, 3]);
        let (ranks, order) = rank(&[]);
        assert!(ranks.is_empty() && order.is_empty());
    }

    #[test]
    fn the_ranking_follows_on_time_rate_and_reuse() {
        let good = Counts {
            concluded_with_due: 4,
            concluded_on_time: 4,
            fields_filled: 10,
            fields_prefilled: 8,
            ..Counts::default()
        };
        let late = Counts {
            concluded_with_due: 4,
            concluded_on_time: 1,
            fields_filled: 10,
            fields_prefilled: 8,
            ..Counts::default()
        };
        let no_reuse = Counts {
            concluded_with_due: 4,
            concluded_on_time: 4,
            fields_filled: 10,
            ..Counts::default()
        };
        let (list, city) = ranking(
            vec![
                ("late".into(), late),
                ("no_reuse".into(), no_reuse),
                ("good".into(), good),
            ],
            &weights(1, 1),
        );
        let names: Vec<&str> = list.iter().map(|r| r.department.as_str()).collect();
        assert_eq!(names, vec!["good", "late", "no_reuse"]);
        assert_eq!(list[0].score, 90.0);
        assert_eq!(list[1].score, 52.5);
        assert_eq!(list[2].score, 50.0);
        assert_eq!(city.concluded_on_time, 9);
        assert_eq!(city.fields_prefilled, 16);
    }

    #[test]
    fn months_are_checked_and_counted_in_china_time() {
        // 2026-11-30T17:00Z is already 1 December in China
        let now = DateTime::parse_from_rfc3339("2026-11-30T17:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        assert_eq!(
            this_month(now),
            NaiveDate::from_ymd_opt(2026, 12, 1).expect("d")
        );
        assert!(parse_month("2026-12", now).is_ok());
        assert_eq!(parse_month("2027-01", now), Err(MonthError::OutOfRange));
        assert_eq!(parse_month("1999-12", now), Err(MonthError::OutOfRange));
        for bad in ["2026-13", "2026-1", "202611", "x-y", ""] {
            assert_eq!(parse_month(bad, now), Err(MonthError::Malformed), "{bad}");
        }
        let months = last_months(now, 3);
        assert_eq!(
            months
                .iter()
                .map(|m| m.format("%Y-%m").to_string())
                .collect::<Vec<_>>(),
            vec!["2026-10", "2026-11", "2026-12"]
        );
        let w = month_window(NaiveDate::from_ymd_opt(2026, 2, 1).expect("d"), now);
        assert_eq!(w.from.to_rfc3339(), "2026-01-31T16:00:00+00:00");
        assert_eq!(w.to.to_rfc3339(), "2026-02-28T16:00:00+00:00");
        assert_eq!(w.to_day, NaiveDate::from_ymd_opt(2026, 3, 1).expect("d"));
        assert_eq!(w.live_since, w.to - Duration::days(30));
        assert_eq!(w.report_month, "2026-02");
        // the current month ends now
        let w = month_window(this_month(now), now);
        assert_eq!(w.to, now);
        assert_eq!(
            next_month(NaiveDate::from_ymd_opt(2026, 12, 1).expect("d")).year(),
            2027
        );
    }

    #[test]
    fn the_export_has_a_header_one_row_per_department_and_the_city() {
        let (list, city) = ranking(
            vec![
                (
                    "A".into(),
                    Counts {
                        rated: 2,
                        rating_sum: 9,
                        ..Counts::default()
                    },
                ),
                ("B".into(), Counts::default()),
            ],
            &weights(1, 1),
        );
        let a = Assessment {
            period: "2026-11".into(),
            weights: weights(1, 1),
            city_rates: city.rates(),
            city,
            departments: list,
        };
        let rows = export_rows(&a, &Catalogue::default(), Lang::En);
        let headers = export_headers(Lang::En);
        assert_eq!(rows.len(), 3);
        assert!(rows.iter().all(|r| r.len() == headers.len()));
        assert_eq!(rows[2][2], Cell::Text("City-wide".into()));
        assert_eq!(rows[0][27], Cell::Num(4.5));
        let csv = String::from_utf8(export_csv(&headers, &rows).expect("csv")).expect("utf8");
        let lines: Vec<&str> = csv.trim_end().lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(
            lines[0]
                .trim_start_matches('\u{feff}')
                .starts_with("rank,uscc,department,score")
        );
        let zh = export_headers(Lang::Zh);
        assert_eq!(zh[0], "排名");
        let xlsx = export_xlsx("2026-11", &headers, &rows).expect("xlsx");
        assert!(xlsx.starts_with(b"PK"));
    }

    #[test]
    fn task_percents_average_the_reported_tasks() {
        let tasks = serde_json::json!([
            {"task": "二(一)", "percent": 100, "note": ""},
            {"task": "二(六)", "percent": 40.4},
            {"task": "二(十一)", "percent": 130},
            {"task": "二(十二)"}
        ]);
        assert_eq!(task_percents(&tasks), (3, 240));
        assert_eq!(task_percents(&serde_json::json!({})), (0, 0));
    }
}

//! The holiday calendar as a running gateway uses it, and retention (issue 13, items 7
//! and 10).
//!
//! The calendar is the built-in years, the configured `holidays_file`, and the years an
//! operator imported with `onewindow calendar import` (kept in the database, so every
//! instance sees them). Until a year is there, due dates running into it are counted by
//! the weekday rule and marked provisional; when it arrives they are counted again.

use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};

use crate::config::Settings;
use crate::domain::calendar::HolidayCalendar;
use crate::domain::catalogue::Catalogue;
use crate::state::AppState;
use crate::store::Store;

/// The calendar from the built-in years, the configured file and the imported years.
pub async fn load_calendar(
    settings: &Settings,
    store: &dyn Store,
) -> anyhow::Result<HolidayCalendar> {
    let mut cal = HolidayCalendar::builtin().clone();
    if let Some(path) = &settings.cases.holidays_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read holidays_file {}", path.display()))?;
        let extra = HolidayCalendar::from_json(&text)
            .map_err(|e| anyhow::anyhow!("holidays_file {}: {e}", path.display()))?;
        cal = cal.merged(&extra);
    }
    for (year, text) in store
        .calendar_years()
        .await
        .context("cannot read the imported calendar years")?
    {
        let extra = HolidayCalendar::from_json(&text)
            .map_err(|e| anyhow::anyhow!("imported calendar year {year} is invalid: {e}"))?;
        cal = cal.merged(&extra);
    }
    Ok(cal)
}

/// Warns in the log when the calendar lacks the current year, or from 1 November the
/// next one; answers the years missing (also shown on the operations dashboard).
pub fn warn_missing_years(cal: &HolidayCalendar, today: NaiveDate) -> Vec<i32> {
    let missing = cal.years_needed(today);
    if !missing.is_empty() {
        tracing::warn!(
            ?missing,
            "the holiday calendar lacks these years: due dates running into them are provisional (weekday rule) until the State Council's notice is imported with `onewindow calendar import <file>`"
        );
    }
    missing
}

/// What counting provisional due dates again did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Recount {
    /// Provisional cases looked at.
    pub checked: usize,
    /// Now final (every year they run through is known).
    pub settled: usize,
    /// Counted again but still provisional (a year is still missing).
    pub still_provisional: usize,
    /// Left for the next pass: changed meanwhile, or their service is gone.
    pub skipped: usize,
}

/// Counts the due dates of every provisional case again with `cal`.
pub async fn recount_provisional(
    store: &dyn Store,
    catalogue: &Catalogue,
    cal: &HolidayCalendar,
    today: NaiveDate,
) -> anyhow::Result<Recount> {
    let mut out = Recount::default();
    for c in store.provisional_cases().await? {
        out.checked += 1;
        let (Some(service), Some(accepted)) = (catalogue.service(&c.service_code), c.accepted_on)
        else {
            out.skipped += 1;
            continue;
        };
        let pauses = super::step::pauses_from_json(&c.pauses);
        let (due, legal, provisional) =
            super::step::due_dates(cal, service, accepted, &pauses, today);
        let entry = recount_entry(&c, due, legal, Utc::now());
        if store
            .set_due_dates(c.id, c.version, due, legal, provisional, entry.as_ref())
            .await?
        {
            if provisional {
                out.still_provisional += 1;
            } else {
                out.settled += 1;
            }
        } else {
            out.skipped += 1;
        }
    }
    Ok(out)
}

/// The history entry recording a due date counted again, when one changed: the gateway
/// (`system`) as actor, the status kept, the old and new dates in the note. Pure.
pub fn recount_entry(
    c: &crate::store::ProvisionalCase,
    due: Option<NaiveDate>,
    legal: Option<NaiveDate>,
    at: DateTime<Utc>,
) -> Option<crate::store::EventRow> {
    if c.due_on == due && c.legal_due_on == legal {
        return None;
    }
    let show = |d: Option<NaiveDate>| d.map_or_else(|| "—".to_owned(), |d| d.to_string());
    let mut zh = Vec::new();
    let mut en = Vec::new();
    if c.due_on != due {
        zh.push(format!("承诺办结日 {} → {}", show(c.due_on), show(due)));
        en.push(format!("due date {} → {}", show(c.due_on), show(due)));
    }
    if c.legal_due_on != legal {
        zh.push(format!(
            "法定办结日 {} → {}",
            show(c.legal_due_on),
            show(legal)
        ));
        en.push(format!(
            "legal due date {} → {}",
            show(c.legal_due_on),
            show(legal)
        ));
    }
    Some(crate::store::EventRow {
        seq: 0,
        at,
        actor: crate::domain::case::Actor::System.code().to_owned(),
        actor_id: None,
        actor_name: "系统 / System".to_owned(),
        action: None,
        from_status: Some(c.status.clone()),
        to_status: c.status.clone(),
        note: Some(format!(
            "按导入的节假日安排重新计算期限：{}。Deadline counted again with the imported holiday calendar: {}.",
            zh.join("，"),
            en.join(", ")
        )),
        attachments: serde_json::json!([]),
    })
}

/// Reloads the calendar from its sources; when it changed (an operator imported a year
/// through any instance), puts it in place and counts provisional due dates again.
pub async fn refresh_calendar(app: &AppState) -> anyhow::Result<Option<Recount>> {
    let fresh = load_calendar(&app.settings, app.store.as_ref()).await?;
    if *app.calendar.current() == fresh {
        return Ok(None);
    }
    app.calendar.replace(fresh);
    let cal: Arc<HolidayCalendar> = app.calendar.current();
    let r = recount_provisional(app.store.as_ref(), &app.catalogue, &cal, super::today()).await?;
    tracing::info!(
        years = ?cal.years(),
        checked = r.checked,
        settled = r.settled,
        still_provisional = r.still_provisional,
        skipped = r.skipped,
        "holiday calendar changed: provisional due dates counted again"
    );
    Ok(Some(r))
}

/// Retention periods (from the settings).
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Uploads never attached to a case are removed this long after upload.
    pub unattached_uploads: chrono::Duration,
    /// Drafts untouched this long are removed (besides their own expiry).
    pub drafts: chrono::Duration,
    /// The files of a closed case's materials are removed this long after it closed;
    /// `None` keeps them.
    pub closed_case_materials: Option<chrono::Duration>,
}

/// What one retention run removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Removed {
    /// Uploads never attached to a case.
    pub unattached_uploads: usize,
    /// Drafts.
    pub drafts: u64,
    /// Files of closed cases' materials.
    pub closed_case_files: usize,
    /// Expired database sessions.
    pub sessions: u64,
}

impl Retention {
    /// The periods the settings give.
    pub fn from_settings(s: &Settings) -> Retention {
        let secs = |n: u64| chrono::Duration::seconds(i64::try_from(n).unwrap_or(i64::MAX / 1000));
        Retention {
            unattached_uploads: secs(s.cases.upload_retention_secs),
            drafts: secs(s.cases.draft_ttl_secs),
            closed_case_materials: (s.cases.closed_case_files_days > 0).then(|| {
                chrono::Duration::days(
                    i64::try_from(s.cases.closed_case_files_days).unwrap_or(36_500),
                )
            }),
        }
    }
}

/// Closed cases' files removed per run at most, so one run stays short; the rest wait
/// for the next.
const FILES_PER_RUN: i64 = 1000;

/// One retention run: removes uploads never attached to a case, drafts past their
/// period, the files of materials of cases closed longer than configured, and expired
/// database sessions; logs the counts (every run, zeros included) and answers them.
pub async fn run_retention(app: &AppState, now: DateTime<Utc>) -> anyhow::Result<Removed> {
    let periods = Retention::from_settings(&app.settings);
    let mut removed = Removed::default();
    let stale = app
        .store
        .remove_stale_uploads(now - periods.unattached_uploads)
        .await?;
    for u in &stale {
        app.files.delete(&u.storage_key).await?;
    }
    removed.unattached_uploads = stale.len();
    removed.drafts = app.store.purge_expired_drafts(now).await?;
    if let Some(keep) = periods.closed_case_materials {
        let purged = app
            .store
            .purge_closed_case_materials(now - keep, now, FILES_PER_RUN)
            .await?;
        for u in &purged {
            app.files.delete(&u.storage_key).await?;
        }
        removed.closed_case_files = purged.len();
    }
    // sessions expire by the real clock (as they are read), whatever `now` a caller
    // passes to look ahead
    removed.sessions = app
        .store
        .purge_expired_sessions(Utc::now().timestamp())
        .await?;
    tracing::info!(
        unattached_uploads = removed.unattached_uploads,
        drafts = removed.drafts,
        closed_case_files = removed.closed_case_files,
        expired_sessions = removed.sessions,
        "retention run"
    );
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(due: Option<NaiveDate>, legal: Option<NaiveDate>) -> crate::store::ProvisionalCase {
        crate::store::ProvisionalCase {
            id: uuid::Uuid::nil(),
            version: 3,
            service_code: "x".into(),
            accepted_on: NaiveDate::from_ymd_opt(2026, 12, 20),
            pauses: serde_json::json!([]),
            due_on: due,
            legal_due_on: legal,
            status: "accepted".into(),
        }
    }

    #[test]
    fn a_changed_due_date_gets_a_history_entry_an_unchanged_one_none() {
        let d = |m, day| NaiveDate::from_ymd_opt(2027, m, day);
        let at = Utc::now();
        assert!(recount_entry(&case(d(1, 5), d(1, 12)), d(1, 5), d(1, 12), at).is_none());
        let e = recount_entry(&case(d(1, 5), d(1, 12)), d(1, 8), d(1, 12), at).expect("entry");
        assert_eq!(e.actor, "system");
        assert_eq!(e.action, None);
        assert_eq!(e.from_status.as_deref(), Some("accepted"));
        assert_eq!(e.to_status, "accepted");
        let note = e.note.expect("note");
        assert!(note.contains("2027-01-05 → 2027-01-08"), "{note}");
        assert!(
            !note.contains("legal due date"),
            "only what changed: {note}"
        );
        let e = recount_entry(&case(d(1, 5), d(1, 12)), d(1, 5), d(1, 19), at).expect("entry");
        assert!(
            e.note
                .expect("note")
                .contains("legal due date 2027-01-12 → 2027-01-19")
        );
    }
}

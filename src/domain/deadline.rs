//! Promised due dates (承诺办结时限) and their state on worklists and case pages.
//!
//! The rules:
//!
//! - The clock starts at acceptance (受理). Submission, intake checks and any refusal to
//!   accept happen before it and do not count.
//! - The due date is the acceptance date plus the limit: `n` working days counted with
//!   the [`HolidayCalendar`] (the acceptance day itself not counted, so the first day
//!   counted is the next working day), or `n` natural days.
//! - Time spent paused does not count: while correction is requested (补齐补正) or a
//!   special procedure runs (特别程序) the clock stops. The due date is extended by the
//!   days in each pause, counted as the days in (pause start, pause end]: working days
//!   for a working-day limit, natural days for a natural-day limit. A pause that is still
//!   open counts up to `today`, so the due date moves on while it stays open. Days before
//!   acceptance are never counted, and days covered by two overlapping pauses count once.
//! - A limit of 0 means on the spot (即办): due on the acceptance date (moved only by
//!   paused days, if a pause was ever needed).
//! - A working-day question about a year the calendar does not cover fails with
//!   [`CalendarError::YearMissing`]: a due date is never guessed. Natural-day limits do
//!   not need the calendar.
//!
//! The state shown is [`DeadlineState`]: concluded cases are met or missed by their
//! conclusion date; open cases are paused, overdue after the due date, due soon when at
//! most a configured number of working days remain, and on time otherwise.

use chrono::{Days, NaiveDate};
use serde::Serialize;

use super::calendar::{CalendarError, HolidayCalendar};
use super::catalogue::{LimitUnit, TimeLimit};

/// One stretch of time with the clock stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pause {
    /// The day the clock stopped (correction requested, special procedure started).
    pub from: NaiveDate,
    /// The day the clock restarted; `None` while still paused.
    pub to: Option<NaiveDate>,
}

/// The state of a case's deadline, as shown to staff and applicants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadlineState {
    /// Open, with more than the due-soon margin left.
    OnTime,
    /// Open, with at most the due-soon margin of working days left (due today included).
    DueSoon,
    /// Open, past the due date.
    Overdue,
    /// Open, with the clock stopped.
    Paused,
    /// Concluded on or before the due date.
    Met,
    /// Concluded after the due date.
    Missed,
}

impl DeadlineState {
    /// Stable code, the same as the serialised form.
    pub fn code(self) -> &'static str {
        match self {
            DeadlineState::OnTime => "on_time",
            DeadlineState::DueSoon => "due_soon",
            DeadlineState::Overdue => "overdue",
            DeadlineState::Paused => "paused",
            DeadlineState::Met => "met",
            DeadlineState::Missed => "missed",
        }
    }

    /// Display labels: (Chinese, English).
    pub fn labels(self) -> (&'static str, &'static str) {
        match self {
            DeadlineState::OnTime => ("正常", "On time"),
            DeadlineState::DueSoon => ("即将到期", "Due soon"),
            DeadlineState::Overdue => ("已超期", "Overdue"),
            DeadlineState::Paused => ("已暂停计时", "Clock paused"),
            DeadlineState::Met => ("按期办结", "Concluded on time"),
            DeadlineState::Missed => ("超期办结", "Concluded late"),
        }
    }
}

/// Paused stretches as half-open ranges (start, end], clipped to start no earlier than
/// acceptance, open pauses ending `today`, empty ones dropped, overlaps merged.
fn paused_ranges(
    accepted_on: NaiveDate,
    pauses: &[Pause],
    today: NaiveDate,
) -> Vec<(NaiveDate, NaiveDate)> {
    let mut ranges: Vec<(NaiveDate, NaiveDate)> = pauses
        .iter()
        .map(|p| (p.from.max(accepted_on), p.to.unwrap_or(today)))
        .filter(|(start, end)| start < end)
        .collect();
    ranges.sort();
    let mut merged: Vec<(NaiveDate, NaiveDate)> = Vec::with_capacity(ranges.len());
    for (start, end) in ranges {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    merged
}

/// Adds natural days, failing loudly (not wrapping) past the end of the date range.
fn add_natural_days(start: NaiveDate, n: u64) -> Result<NaiveDate, CalendarError> {
    start
        .checked_add_days(Days::new(n))
        .ok_or_else(|| CalendarError::Invalid(format!("{start} + {n} days is out of range")))
}

/// The promised due date: `accepted_on` plus `limit`, extended by the paused days (see
/// the module rules). `today` closes a pause that is still open.
pub fn due_date(
    cal: &HolidayCalendar,
    accepted_on: NaiveDate,
    limit: TimeLimit,
    pauses: &[Pause],
    today: NaiveDate,
) -> Result<NaiveDate, CalendarError> {
    let ranges = paused_ranges(accepted_on, pauses, today);
    match limit.unit {
        LimitUnit::WorkingDays => {
            let mut extra: u32 = 0;
            for (start, end) in ranges {
                extra = extra.saturating_add(cal.working_days_between(start, end)?);
            }
            cal.add_working_days(accepted_on, limit.value.saturating_add(extra))
        }
        LimitUnit::NaturalDays => {
            let extra: u64 = ranges
                .iter()
                .map(|(start, end)| end.signed_duration_since(*start).num_days().unsigned_abs())
                .sum();
            add_natural_days(accepted_on, u64::from(limit.value) + extra)
        }
    }
}

/// A due date that may rest on the weekday rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    /// The date.
    pub on: NaiveDate,
    /// Counted at least in part by the weekday rule, because the holiday calendar lacks a
    /// year the count passed through: shown as provisional, and counted again when that
    /// year's calendar is imported.
    pub provisional: bool,
}

/// Years a walk may need at most before it gives up; no limit in the catalogue comes near.
const MAX_FILLED_YEARS: usize = 50;

/// The due date as [`due_date`] counts it, except that a year the calendar lacks is
/// counted by the weekday rule (Monday to Friday work) and the answer is marked
/// provisional, so a case accepted before the State Council's notice still gets a date.
/// Natural-day limits never need the calendar and are never provisional.
pub fn due_date_or_provisional(
    cal: &HolidayCalendar,
    accepted_on: NaiveDate,
    limit: TimeLimit,
    pauses: &[Pause],
    today: NaiveDate,
) -> Result<Due, CalendarError> {
    let mut filled: Option<HolidayCalendar> = None;
    for _ in 0..MAX_FILLED_YEARS {
        let current = filled.as_ref().unwrap_or(cal);
        match due_date(current, accepted_on, limit, pauses, today) {
            Ok(on) => {
                return Ok(Due {
                    on,
                    provisional: filled.is_some(),
                });
            }
            Err(CalendarError::YearMissing(y)) => {
                filled = Some(current.with_weekday_rule([y]));
            }
            Err(e) => return Err(e),
        }
    }
    Err(CalendarError::Invalid(format!(
        "a due date from {accepted_on} runs through more than {MAX_FILLED_YEARS} unknown years"
    )))
}

/// The calendar to judge a deadline's state between `today` and `due` with: `cal`
/// itself when it covers both, else `cal` with the weekday rule for the years it lacks.
pub fn calendar_for_state(
    cal: &HolidayCalendar,
    due: NaiveDate,
    today: NaiveDate,
) -> std::borrow::Cow<'_, HolidayCalendar> {
    use chrono::Datelike;
    let (from, to) = (due.min(today).year(), due.max(today).year());
    if cal.missing_years(from, to).is_empty() {
        std::borrow::Cow::Borrowed(cal)
    } else {
        std::borrow::Cow::Owned(cal.with_weekday_rule(from..=to))
    }
}

/// State of a deadline: once concluded, Met/Missed by the conclusion date; otherwise
/// paused while a pause is open; otherwise Overdue after the due date, DueSoon when at
/// most `due_soon` working days remain (counting today→due with
/// [`HolidayCalendar::working_days_between`]; due today is always DueSoon), else OnTime.
pub fn state(
    cal: &HolidayCalendar,
    due: NaiveDate,
    today: NaiveDate,
    paused_now: bool,
    concluded_on: Option<NaiveDate>,
    due_soon: u32,
) -> Result<DeadlineState, CalendarError> {
    if let Some(concluded) = concluded_on {
        return Ok(if concluded <= due {
            DeadlineState::Met
        } else {
            DeadlineState::Missed
        });
    }
    if paused_now {
        return Ok(DeadlineState::Paused);
    }
    if today > due {
        return Ok(DeadlineState::Overdue);
    }
    if cal.working_days_between(today, due)? <= due_soon {
        Ok(DeadlineState::DueSoon)
    } else {
        Ok(DeadlineState::OnTime)
    }
}

/// Working days left until due (negative when overdue), for worklists.
///
/// On the due date it is 0. Past it, it is minus the working days elapsed since the due
/// date, and at least -1: a case that fell due on Friday shows -1 over the weekend and on
/// Monday, -2 on Tuesday.
pub fn working_days_left(
    cal: &HolidayCalendar,
    due: NaiveDate,
    today: NaiveDate,
) -> Result<i64, CalendarError> {
    if today <= due {
        Ok(i64::from(cal.working_days_between(today, due)?))
    } else {
        let late = cal.working_days_between(due, today)?.max(1);
        Ok(-i64::from(late))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("test date")
    }

    fn cal() -> &'static HolidayCalendar {
        HolidayCalendar::builtin()
    }

    fn wd(value: u32) -> TimeLimit {
        TimeLimit {
            value,
            unit: LimitUnit::WorkingDays,
        }
    }

    fn nd(value: u32) -> TimeLimit {
        TimeLimit {
            value,
            unit: LimitUnit::NaturalDays,
        }
    }

    fn closed(from: &str, to: &str) -> Pause {
        Pause {
            from: d(from),
            to: Some(d(to)),
        }
    }

    fn open(from: &str) -> Pause {
        Pause {
            from: d(from),
            to: None,
        }
    }

    /// A `today` that plays no part (no open pause).
    const ANY: &str = "2026-06-30";

    // --- provisional due dates -----------------------------------------------------------

    #[test]
    fn a_missing_year_gives_a_provisional_weekday_date() {
        // Thursday 2026-12-24 + 10 working days: 12-25, 12-28..31, then 2027 by the
        // weekday rule: 01-01 (Friday), 01-04..01-07.
        let due = due_date_or_provisional(cal(), d("2026-12-24"), wd(10), &[], d(ANY));
        assert_eq!(
            due,
            Ok(Due {
                on: d("2027-01-07"),
                provisional: true
            })
        );
        // strict counting refuses
        assert_eq!(
            due_date(cal(), d("2026-12-24"), wd(10), &[], d(ANY)),
            Err(CalendarError::YearMissing(2027))
        );
    }

    #[test]
    fn a_known_year_is_not_provisional() {
        assert_eq!(
            due_date_or_provisional(cal(), d("2023-09-28"), wd(5), &[], d(ANY)),
            Ok(Due {
                on: d("2023-10-11"),
                provisional: false
            })
        );
        assert_eq!(
            due_date_or_provisional(cal(), d("2026-12-24"), nd(30), &[], d(ANY)),
            Ok(Due {
                on: d("2027-01-23"),
                provisional: false
            })
        );
    }

    #[test]
    fn state_across_a_missing_year_uses_the_weekday_rule() {
        let c = calendar_for_state(cal(), d("2027-01-07"), d("2026-12-30"));
        assert_eq!(
            working_days_left(&c, d("2027-01-07"), d("2026-12-30")),
            Ok(6)
        );
        assert!(matches!(
            calendar_for_state(cal(), d("2026-12-30"), d("2026-12-01")),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    // --- due_date: working days --------------------------------------------------------

    #[test]
    fn working_days_in_an_ordinary_stretch() {
        // Monday 2023-10-09 + 5 working days = Monday 2023-10-16.
        assert_eq!(
            due_date(cal(), d("2023-10-09"), wd(5), &[], d(ANY)),
            Ok(d("2023-10-16"))
        );
    }

    #[test]
    fn working_days_across_national_day_2023() {
        // 10-07, 10-08 (调休 weekend), 10-09, 10-10, 10-11.
        assert_eq!(
            due_date(cal(), d("2023-09-28"), wd(5), &[], d(ANY)),
            Ok(d("2023-10-11"))
        );
        assert_eq!(
            due_date(cal(), d("2023-09-25"), wd(20), &[], d(ANY)),
            Ok(d("2023-10-27"))
        );
    }

    #[test]
    fn due_on_a_makeup_saturday() {
        assert_eq!(
            due_date(cal(), d("2023-09-28"), wd(1), &[], d(ANY)),
            Ok(d("2023-10-07"))
        );
    }

    #[test]
    fn working_days_across_spring_festival_2024() {
        // 02-06..02-09, then 02-18 (调休 Sunday) .. 02-23.
        assert_eq!(
            due_date(cal(), d("2024-02-05"), wd(10), &[], d(ANY)),
            Ok(d("2024-02-23"))
        );
    }

    #[test]
    fn accepted_on_a_makeup_sunday() {
        // 2024-02-04 is a 调休 Sunday; 02-05..02-08 follow.
        assert_eq!(
            due_date(cal(), d("2024-02-04"), wd(4), &[], d(ANY)),
            Ok(d("2024-02-08"))
        );
    }

    #[test]
    fn working_days_across_year_end_2025() {
        // 2026-01-01..03 off, 01-04 (Sunday, 调休), 01-05, 01-06.
        assert_eq!(
            due_date(cal(), d("2025-12-31"), wd(3), &[], d(ANY)),
            Ok(d("2026-01-06"))
        );
    }

    #[test]
    fn limit_zero_is_due_on_acceptance() {
        assert_eq!(
            due_date(cal(), d("2023-10-09"), wd(0), &[], d(ANY)),
            Ok(d("2023-10-09"))
        );
        assert_eq!(
            due_date(cal(), d("2023-10-09"), nd(0), &[], d(ANY)),
            Ok(d("2023-10-09"))
        );
        // Even accepted on a holiday (e.g. online), and even in an unknown year.
        assert_eq!(
            due_date(cal(), d("2023-10-02"), wd(0), &[], d(ANY)),
            Ok(d("2023-10-02"))
        );
        assert_eq!(
            due_date(cal(), d("2030-03-01"), wd(0), &[], d("2030-03-01")),
            Ok(d("2030-03-01"))
        );
    }

    #[test]
    fn limit_zero_with_a_correction_pause() {
        // On the spot, but materials had to be completed: due when the pause ends.
        let pauses = [closed("2023-10-09", "2023-10-11")];
        assert_eq!(
            due_date(cal(), d("2023-10-09"), wd(0), &pauses, d(ANY)),
            Ok(d("2023-10-11"))
        );
    }

    #[test]
    fn working_days_into_an_unknown_year_fail() {
        assert_eq!(
            due_date(cal(), d("2026-12-20"), wd(15), &[], d(ANY)),
            Err(CalendarError::YearMissing(2027))
        );
        assert_eq!(
            due_date(cal(), d("2030-03-01"), wd(5), &[], d("2030-03-01")),
            Err(CalendarError::YearMissing(2030))
        );
    }

    // --- due_date: natural days --------------------------------------------------------

    #[test]
    fn natural_days_ignore_holidays() {
        assert_eq!(
            due_date(cal(), d("2023-09-28"), nd(10), &[], d(ANY)),
            Ok(d("2023-10-08"))
        );
    }

    #[test]
    fn natural_days_need_no_calendar() {
        assert_eq!(
            due_date(cal(), d("2030-01-01"), nd(15), &[], d(ANY)),
            Ok(d("2030-01-16"))
        );
        assert_eq!(
            due_date(cal(), d("2026-12-20"), nd(30), &[], d(ANY)),
            Ok(d("2027-01-19"))
        );
    }

    #[test]
    fn natural_days_pause_counts_natural_days() {
        // Paused (2023-09-27, 2023-10-09] = 12 natural days; 10 + 12 = 22.
        let pauses = [closed("2023-09-27", "2023-10-09")];
        assert_eq!(
            due_date(cal(), d("2023-09-20"), nd(10), &pauses, d(ANY)),
            Ok(d("2023-10-12"))
        );
    }

    #[test]
    fn natural_days_open_pause_counts_to_today() {
        // Paused (2030-01-05, today 2030-01-08] = 3 days.
        let pauses = [open("2030-01-05")];
        assert_eq!(
            due_date(cal(), d("2030-01-01"), nd(10), &pauses, d("2030-01-08")),
            Ok(d("2030-01-14"))
        );
    }

    // --- due_date: pauses --------------------------------------------------------------

    #[test]
    fn pause_spanning_national_day_adds_only_working_days() {
        // Without the pause: 2023-09-20 + 10 = 2023-10-10.
        assert_eq!(
            due_date(cal(), d("2023-09-20"), wd(10), &[], d(ANY)),
            Ok(d("2023-10-10"))
        );
        // (09-27, 10-09] holds 09-28, 10-07, 10-08, 10-09: 4 working days; + 14 = 10-16.
        let pauses = [closed("2023-09-27", "2023-10-09")];
        assert_eq!(
            due_date(cal(), d("2023-09-20"), wd(10), &pauses, d(ANY)),
            Ok(d("2023-10-16"))
        );
    }

    #[test]
    fn pause_inside_a_holiday_adds_nothing() {
        let pauses = [closed("2023-09-29", "2023-10-06")];
        assert_eq!(
            due_date(cal(), d("2023-09-20"), wd(10), &pauses, d(ANY)),
            Ok(d("2023-10-10"))
        );
    }

    #[test]
    fn pause_ending_the_day_it_starts_adds_nothing() {
        let pauses = [closed("2023-10-10", "2023-10-10")];
        assert_eq!(
            due_date(cal(), d("2023-10-09"), wd(5), &pauses, d(ANY)),
            Ok(d("2023-10-16"))
        );
    }

    #[test]
    fn two_pauses_add_up() {
        // Accepted Mon 2023-10-09, 5 working days → 10-16.
        // Pause 1 (10-10, 10-12] = 2, pause 2 (10-16, 10-17] = 1 → 8 working days → 10-19.
        let pauses = [
            closed("2023-10-10", "2023-10-12"),
            closed("2023-10-16", "2023-10-17"),
        ];
        assert_eq!(
            due_date(cal(), d("2023-10-09"), wd(5), &pauses, d(ANY)),
            Ok(d("2023-10-19"))
        );
    }

    #[test]
    fn overlapping_pauses_count_once() {
        let pauses = [
            closed("2023-10-10", "2023-10-12"),
            closed("2023-10-11", "2023-10-13"),
        ];
        // (10-10, 10-13] = 3 working days → 5 + 3 = 8 → 10-19.
        assert_eq!(
            due_date(cal(), d("2023-10-09"), wd(5), &pauses, d(ANY)),
            Ok(d("2023-10-19"))
        );
    }

    #[test]
    fn pause_days_before_acceptance_do_not_count() {
        // Only (10-09, 10-11] counts: 2 working days → 7 → 10-18.
        let pauses = [closed("2023-10-02", "2023-10-11")];
        assert_eq!(
            due_date(cal(), d("2023-10-09"), wd(5), &pauses, d(ANY)),
            Ok(d("2023-10-18"))
        );
    }

    #[test]
    fn open_pause_counts_up_to_today() {
        // Accepted 2024-02-05 (10 working days → 02-23 unpaused).
        // Paused since Thursday 02-08; today 02-19: (02-08, 02-19] = 02-09, 02-18, 02-19 = 3.
        let pauses = [open("2024-02-08")];
        assert_eq!(
            due_date(cal(), d("2024-02-05"), wd(10), &pauses, d("2024-02-19")),
            Ok(d("2024-02-28"))
        );
        // The next day the due date moves one working day further.
        assert_eq!(
            due_date(cal(), d("2024-02-05"), wd(10), &pauses, d("2024-02-20")),
            Ok(d("2024-02-29"))
        );
    }

    #[test]
    fn open_pause_starting_today_adds_nothing_yet() {
        let pauses = [open("2024-02-08")];
        assert_eq!(
            due_date(cal(), d("2024-02-05"), wd(10), &pauses, d("2024-02-08")),
            Ok(d("2024-02-23"))
        );
    }

    #[test]
    fn pause_into_an_unknown_year_fails() {
        let pauses = [closed("2026-12-28", "2027-01-04")];
        assert_eq!(
            due_date(cal(), d("2026-12-01"), wd(5), &pauses, d(ANY)),
            Err(CalendarError::YearMissing(2027))
        );
    }

    // --- state -------------------------------------------------------------------------

    #[test]
    fn met_on_the_due_date_missed_the_day_after() {
        let due = d("2023-10-11");
        let s = |c: &str| state(cal(), due, d("2023-10-20"), false, Some(d(c)), 3);
        assert_eq!(s("2023-10-10"), Ok(DeadlineState::Met));
        assert_eq!(s("2023-10-11"), Ok(DeadlineState::Met));
        assert_eq!(s("2023-10-12"), Ok(DeadlineState::Missed));
    }

    #[test]
    fn concluded_needs_no_calendar() {
        assert_eq!(
            state(
                cal(),
                d("2030-05-10"),
                d("2030-05-01"),
                false,
                Some(d("2030-05-01")),
                3
            ),
            Ok(DeadlineState::Met)
        );
    }

    #[test]
    fn concluded_outranks_paused() {
        assert_eq!(
            state(
                cal(),
                d("2023-10-11"),
                d("2023-10-20"),
                true,
                Some(d("2023-10-12")),
                3
            ),
            Ok(DeadlineState::Missed)
        );
    }

    #[test]
    fn paused_even_when_past_due() {
        assert_eq!(
            state(cal(), d("2023-10-11"), d("2023-10-20"), true, None, 3),
            Ok(DeadlineState::Paused)
        );
    }

    #[test]
    fn overdue_the_day_after_due() {
        let due = d("2023-10-11");
        assert_eq!(
            state(cal(), due, d("2023-10-12"), false, None, 3),
            Ok(DeadlineState::Overdue)
        );
        assert_eq!(
            state(cal(), due, d("2023-10-11"), false, None, 3),
            Ok(DeadlineState::DueSoon)
        );
    }

    #[test]
    fn due_today_is_due_soon_even_with_zero_margin() {
        let due = d("2023-10-11");
        assert_eq!(
            state(cal(), due, due, false, None, 0),
            Ok(DeadlineState::DueSoon)
        );
        assert_eq!(
            state(cal(), due, d("2023-10-10"), false, None, 0),
            Ok(DeadlineState::OnTime)
        );
    }

    #[test]
    fn due_soon_boundary_in_working_days() {
        // Due Monday 2023-10-16; margin 3.
        let due = d("2023-10-16");
        let s = |today: &str| state(cal(), due, d(today), false, None, 3);
        assert_eq!(s("2023-10-10"), Ok(DeadlineState::OnTime)); // 4 left
        assert_eq!(s("2023-10-11"), Ok(DeadlineState::DueSoon)); // 3 left
        assert_eq!(s("2023-10-13"), Ok(DeadlineState::DueSoon)); // 1 left
        assert_eq!(s("2023-10-14"), Ok(DeadlineState::DueSoon)); // Saturday, 1 left
    }

    #[test]
    fn due_soon_across_a_holiday() {
        // Due 2023-10-09; on 09-28 eleven calendar days remain but only 3 working days.
        let due = d("2023-10-09");
        assert_eq!(
            state(cal(), due, d("2023-09-28"), false, None, 3),
            Ok(DeadlineState::DueSoon)
        );
        // On 09-27: 09-28, 10-07, 10-08, 10-09 = 4 left.
        assert_eq!(
            state(cal(), due, d("2023-09-27"), false, None, 3),
            Ok(DeadlineState::OnTime)
        );
    }

    #[test]
    fn state_into_an_unknown_year_fails() {
        assert_eq!(
            state(cal(), d("2027-01-05"), d("2026-12-28"), false, None, 3),
            Err(CalendarError::YearMissing(2027))
        );
    }

    // --- working_days_left -------------------------------------------------------------

    #[test]
    fn days_left_before_and_on_the_due_date() {
        let due = d("2023-10-16");
        assert_eq!(working_days_left(cal(), due, d("2023-10-09")), Ok(5));
        assert_eq!(working_days_left(cal(), due, d("2023-10-14")), Ok(1));
        assert_eq!(working_days_left(cal(), due, due), Ok(0));
    }

    #[test]
    fn days_left_across_national_day() {
        assert_eq!(
            working_days_left(cal(), d("2023-10-09"), d("2023-09-28")),
            Ok(3)
        );
    }

    #[test]
    fn days_left_negative_when_overdue() {
        // Due Friday 2023-10-13.
        let due = d("2023-10-13");
        assert_eq!(working_days_left(cal(), due, d("2023-10-14")), Ok(-1)); // Saturday
        assert_eq!(working_days_left(cal(), due, d("2023-10-15")), Ok(-1)); // Sunday
        assert_eq!(working_days_left(cal(), due, d("2023-10-16")), Ok(-1)); // Monday
        assert_eq!(working_days_left(cal(), due, d("2023-10-17")), Ok(-2));
    }

    #[test]
    fn days_left_overdue_across_spring_festival() {
        // Due Friday 2024-02-09; on Monday 02-19: 02-18 (调休) and 02-19 elapsed.
        assert_eq!(
            working_days_left(cal(), d("2024-02-09"), d("2024-02-19")),
            Ok(-2)
        );
    }

    #[test]
    fn days_left_agrees_with_state() {
        let due = d("2024-02-23");
        let mut today = d("2024-01-25");
        while today <= d("2024-03-05") {
            let left = working_days_left(cal(), due, today).expect("2024");
            let st = state(cal(), due, today, false, None, 3).expect("2024");
            let expected = if left < 0 {
                DeadlineState::Overdue
            } else if left <= 3 {
                DeadlineState::DueSoon
            } else {
                DeadlineState::OnTime
            };
            assert_eq!(st, expected, "{today}: {left}");
            today = today.succ_opt().expect("date");
        }
    }

    #[test]
    fn days_left_in_an_unknown_year_fails() {
        assert_eq!(
            working_days_left(cal(), d("2030-01-10"), d("2030-01-07")),
            Err(CalendarError::YearMissing(2030))
        );
    }

    // --- DeadlineState -----------------------------------------------------------------

    #[test]
    fn codes_match_serde() {
        for st in [
            DeadlineState::OnTime,
            DeadlineState::DueSoon,
            DeadlineState::Overdue,
            DeadlineState::Paused,
            DeadlineState::Met,
            DeadlineState::Missed,
        ] {
            let json = serde_json::to_string(&st).expect("serialise");
            assert_eq!(json, format!("\"{}\"", st.code()));
        }
        assert_eq!(DeadlineState::DueSoon.code(), "due_soon");
    }

    #[test]
    fn labels_in_both_languages() {
        assert_eq!(DeadlineState::OnTime.labels(), ("正常", "On time"));
        assert_eq!(DeadlineState::DueSoon.labels(), ("即将到期", "Due soon"));
        assert_eq!(DeadlineState::Overdue.labels(), ("已超期", "Overdue"));
        assert_eq!(
            DeadlineState::Paused.labels(),
            ("已暂停计时", "Clock paused")
        );
        assert_eq!(
            DeadlineState::Met.labels(),
            ("按期办结", "Concluded on time")
        );
        assert_eq!(
            DeadlineState::Missed.labels(),
            ("超期办结", "Concluded late")
        );
    }
}

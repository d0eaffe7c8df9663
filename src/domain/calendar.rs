//! The working-day calendar (工作日历): which days count towards a promised time limit.
//!
//! Chinese public holidays move every year and come with 调休: weekend days that become
//! working days to bridge a long holiday. Neither can be computed, so the calendar is data,
//! published once a year by the State Council General Office and loaded from JSON (the
//! built-in copy is `reference-data/holidays/cn-public-holidays-2018-2026.json`).
//!
//! Per year the file lists `holidays` (every day off inside each holiday block, weekends
//! included) and `makeup_workdays` (weekend days that are working days). A day is a
//! working day when it is in `makeup_workdays`, or when it is Monday to Friday and not in
//! `holidays`.
//!
//! A year that is not in the calendar is unknown: every question about one of its days
//! fails with [`CalendarError::YearMissing`] rather than guessing from weekdays alone,
//! because a guess would silently move due dates by a week around a holiday.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use chrono::{Datelike, NaiveDate, Weekday};
use serde::Deserialize;

/// Why a calendar question could not be answered or a calendar file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    /// The calendar has no data for this year; load that year's holiday notice.
    #[error(
        "the holiday calendar has no data for {0}; load that year's State Council holiday notice"
    )]
    YearMissing(i32),
    /// A calendar file is malformed; the text says where and why.
    #[error("invalid holiday calendar: {0}")]
    Invalid(String),
}

impl CalendarError {
    /// The same reason in Chinese, for zh-CN error messages.
    pub fn message_zh(&self) -> String {
        match self {
            CalendarError::YearMissing(y) => {
                format!("节假日日历缺少{y}年的数据，请导入当年国务院节假日安排")
            }
            CalendarError::Invalid(why) => format!("节假日日历数据有误：{why}"),
        }
    }
}

/// One year of the calendar: days off and make-up working days, each with its holiday's
/// name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Year {
    holidays: BTreeMap<NaiveDate, String>,
    makeup_workdays: BTreeMap<NaiveDate, String>,
}

/// A working-day calendar covering a known set of years.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HolidayCalendar {
    years: BTreeMap<i32, Year>,
}

/// The JSON file as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    #[serde(default)]
    #[allow(dead_code)]
    source: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    note: Option<String>,
    years: BTreeMap<String, FileYear>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileYear {
    holidays: Vec<FileDay>,
    #[serde(default)]
    makeup_workdays: Vec<FileDay>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDay {
    date: String,
    name: String,
}

static BUILTIN: LazyLock<HolidayCalendar> = LazyLock::new(|| {
    HolidayCalendar::from_json(include_str!(
        "../../reference-data/holidays/cn-public-holidays-2018-2026.json"
    ))
    .expect("built-in holiday calendar reference-data/holidays/cn-public-holidays-2018-2026.json is invalid")
});

/// Parses one list of days for `year`, checking each date and refusing duplicates.
fn parse_days(
    year: i32,
    list: &str,
    days: Vec<FileDay>,
) -> Result<BTreeMap<NaiveDate, String>, CalendarError> {
    let mut out = BTreeMap::new();
    for (i, day) in days.into_iter().enumerate() {
        let at = format!("years.{year}.{list}[{i}]");
        let date = NaiveDate::parse_from_str(&day.date, "%Y-%m-%d").map_err(|_| {
            CalendarError::Invalid(format!(
                "{at}: {:?} is not a date in YYYY-MM-DD form",
                day.date
            ))
        })?;
        if date.year() != year {
            return Err(CalendarError::Invalid(format!(
                "{at}: {date} lies outside the year {year}"
            )));
        }
        if day.name.trim().is_empty() {
            return Err(CalendarError::Invalid(format!("{at}: the name is empty")));
        }
        if out.insert(date, day.name).is_some() {
            return Err(CalendarError::Invalid(format!(
                "{at}: {date} is listed twice"
            )));
        }
    }
    Ok(out)
}

fn is_weekend(d: NaiveDate) -> bool {
    matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}

/// The day after `d`; the calendar never reaches the end of chrono's range because
/// unknown years stop every walk first, but the error is explicit all the same.
fn next_day(d: NaiveDate) -> Result<NaiveDate, CalendarError> {
    d.succ_opt()
        .ok_or_else(|| CalendarError::Invalid(format!("no day after {d}")))
}

impl HolidayCalendar {
    /// Parses and checks a calendar file: every date parses and lies in the year it is
    /// listed under, no date is listed twice, no date is both a holiday and a make-up
    /// working day, and every make-up working day is a Saturday or Sunday.
    pub fn from_json(text: &str) -> Result<HolidayCalendar, CalendarError> {
        let doc: FileDoc =
            serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_str(text))
                .map_err(|e| {
                    let path = e.path().to_string();
                    let inner = e.into_inner();
                    if path == "." || path.is_empty() {
                        CalendarError::Invalid(inner.to_string())
                    } else {
                        CalendarError::Invalid(format!("{path}: {inner}"))
                    }
                })?;
        let mut years = BTreeMap::new();
        for (key, file_year) in doc.years {
            let year: i32 = key
                .parse()
                .ok()
                .filter(|y| (1000..=9999).contains(y) && key.len() == 4)
                .ok_or_else(|| {
                    CalendarError::Invalid(format!("years: {key:?} is not a four-digit year"))
                })?;
            let holidays = parse_days(year, "holidays", file_year.holidays)?;
            let makeup_workdays = parse_days(year, "makeup_workdays", file_year.makeup_workdays)?;
            for date in makeup_workdays.keys() {
                if holidays.contains_key(date) {
                    return Err(CalendarError::Invalid(format!(
                        "years.{year}: {date} is both a holiday and a make-up working day"
                    )));
                }
                if !is_weekend(*date) {
                    return Err(CalendarError::Invalid(format!(
                        "years.{year}.makeup_workdays: {date} is a {:?}, but make-up working \
                         days are weekend days",
                        date.weekday()
                    )));
                }
            }
            years.insert(
                year,
                Year {
                    holidays,
                    makeup_workdays,
                },
            );
        }
        Ok(HolidayCalendar { years })
    }

    /// The calendar shipped with the binary (2018–2026), parsed once.
    pub fn builtin() -> &'static HolidayCalendar {
        &BUILTIN
    }

    /// This calendar with `other`'s years added; a year present in both is taken whole
    /// from `other` (a later file replaces a year, it does not patch it).
    pub fn merged(&self, other: &HolidayCalendar) -> HolidayCalendar {
        let mut years = self.years.clone();
        for (year, data) in &other.years {
            years.insert(*year, data.clone());
        }
        HolidayCalendar { years }
    }

    /// The years the calendar knows, ascending.
    pub fn years(&self) -> Vec<i32> {
        self.years.keys().copied().collect()
    }

    /// Whether the calendar has data for `year`.
    pub fn covers(&self, year: i32) -> bool {
        self.years.contains_key(&year)
    }

    /// Years in `from..=to` the calendar does not cover, ascending (empty when all are
    /// known or the range is empty); for a loud warning at start-up.
    pub fn missing_years(&self, from: i32, to: i32) -> Vec<i32> {
        (from..=to).filter(|y| !self.covers(*y)).collect()
    }

    /// This calendar with each of `years` it lacks added as a year without holidays or
    /// make-up days, so that its days follow the weekday rule alone (Monday to Friday
    /// work). For provisional deadlines only: see [`crate::domain::deadline`].
    pub fn with_weekday_rule(&self, years: impl IntoIterator<Item = i32>) -> HolidayCalendar {
        let mut out = self.clone();
        for y in years {
            out.years.entry(y).or_default();
        }
        out
    }

    /// Years an operator must load soon, as of `today`: the current year when missing,
    /// and from 1 November on also the next year when missing (deadlines accepted now
    /// run into it). Empty when nothing is due.
    pub fn years_needed(&self, today: NaiveDate) -> Vec<i32> {
        let last = if today.month() >= 11 {
            today.year() + 1
        } else {
            today.year()
        };
        self.missing_years(today.year(), last)
    }

    /// The calendar file (as [`HolidayCalendar::from_json`] reads it) holding only
    /// `year`; `None` when the calendar lacks it. Imported years are stored this way.
    pub fn year_json(&self, year: i32) -> Option<String> {
        let y = self.years.get(&year)?;
        let list = |days: &BTreeMap<NaiveDate, String>| {
            days.iter()
                .map(|(d, n)| serde_json::json!({"date": d.to_string(), "name": n}))
                .collect::<Vec<_>>()
        };
        Some(
            serde_json::json!({ "years": { year.to_string(): {
                "holidays": list(&y.holidays),
                "makeup_workdays": list(&y.makeup_workdays),
            }}})
            .to_string(),
        )
    }

    /// Whether `d` is a working day; [`CalendarError::YearMissing`] when its year is
    /// unknown.
    pub fn is_working_day(&self, d: NaiveDate) -> Result<bool, CalendarError> {
        let year = self
            .years
            .get(&d.year())
            .ok_or(CalendarError::YearMissing(d.year()))?;
        if year.makeup_workdays.contains_key(&d) {
            return Ok(true);
        }
        Ok(!is_weekend(d) && !year.holidays.contains_key(&d))
    }

    /// The name of the holiday `d` falls in, if it is a listed day off (including the
    /// weekend days inside a holiday block). `None` for other days and unknown years.
    pub fn holiday_name(&self, d: NaiveDate) -> Option<&str> {
        self.years
            .get(&d.year())?
            .holidays
            .get(&d)
            .map(String::as_str)
    }

    /// The date `n` working days after `start` (start itself not counted; n = 0 → start).
    pub fn add_working_days(&self, start: NaiveDate, n: u32) -> Result<NaiveDate, CalendarError> {
        let mut day = start;
        let mut left = n;
        while left > 0 {
            day = next_day(day)?;
            if self.is_working_day(day)? {
                left -= 1;
            }
        }
        Ok(day)
    }

    /// Working days in the half-open range (from, to]; 0 when to <= from.
    pub fn working_days_between(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<u32, CalendarError> {
        let mut count = 0;
        let mut day = from;
        while day < to {
            day = next_day(day)?;
            if self.is_working_day(day)? {
                count += 1;
            }
        }
        Ok(count)
    }
}

/// The calendar a running gateway uses: replaced whole when an operator imports a year
/// (`onewindow calendar import`), read by every request that shows a deadline.
#[derive(Debug)]
pub struct SharedCalendar(std::sync::RwLock<std::sync::Arc<HolidayCalendar>>);

impl SharedCalendar {
    /// Starts with `cal`.
    pub fn new(cal: HolidayCalendar) -> SharedCalendar {
        SharedCalendar(std::sync::RwLock::new(std::sync::Arc::new(cal)))
    }

    /// The calendar as it is now.
    pub fn current(&self) -> std::sync::Arc<HolidayCalendar> {
        match self.0.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the calendar.
    pub fn replace(&self, cal: HolidayCalendar) {
        let cal = std::sync::Arc::new(cal);
        match self.0.write() {
            Ok(mut g) => *g = cal,
            Err(poisoned) => *poisoned.into_inner() = cal,
        }
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

    fn one_year(year: i32, holidays: &[&str], makeup: &[&str]) -> String {
        let list = |days: &[&str]| {
            days.iter()
                .map(|s| serde_json::json!({"date": s, "name": "Test Holiday"}))
                .collect::<Vec<_>>()
        };
        serde_json::json!({
            "years": { year.to_string(): {
                "holidays": list(holidays),
                "makeup_workdays": list(makeup),
            }}
        })
        .to_string()
    }

    // --- the built-in data -------------------------------------------------------------

    #[test]
    fn builtin_covers_2018_to_2026_only() {
        assert_eq!(cal().years(), (2018..=2026).collect::<Vec<_>>());
        assert!(cal().covers(2018));
        assert!(cal().covers(2026));
        assert!(!cal().covers(2017));
        assert!(!cal().covers(2027));
    }

    #[test]
    fn builtin_is_parsed_once() {
        assert!(std::ptr::eq(
            HolidayCalendar::builtin(),
            HolidayCalendar::builtin()
        ));
    }

    #[test]
    fn working_days_per_year_match_the_file() {
        // Counted independently from the JSON with Python.
        let expected = [
            (2018, 250),
            (2019, 250),
            (2020, 249),
            (2021, 250),
            (2022, 249),
            (2023, 249),
            (2024, 251),
            (2025, 248),
            (2026, 248),
        ];
        for (year, n) in expected {
            let first = d(&format!("{year}-01-01"));
            let last = d(&format!("{year}-12-31"));
            let inner = cal().working_days_between(first, last).expect("known year");
            let first_counts = u32::from(cal().is_working_day(first).expect("known year"));
            assert_eq!(inner + first_counts, n, "{year}");
        }
    }

    // --- is_working_day ----------------------------------------------------------------

    #[test]
    fn ordinary_weekdays_and_weekends() {
        assert!(cal().is_working_day(d("2023-10-09")).expect("2023")); // Monday
        assert!(!cal().is_working_day(d("2023-10-14")).expect("2023")); // Saturday
        assert!(!cal().is_working_day(d("2023-10-15")).expect("2023")); // Sunday
    }

    #[test]
    fn national_day_2023_is_off() {
        for day in [
            "2023-09-29",
            "2023-09-30",
            "2023-10-01",
            "2023-10-02",
            "2023-10-03",
            "2023-10-04",
            "2023-10-05",
            "2023-10-06",
        ] {
            assert!(!cal().is_working_day(d(day)).expect("2023"), "{day}");
        }
    }

    #[test]
    fn tiaoxiu_weekend_is_a_working_day() {
        assert_eq!(d("2023-10-07").weekday(), Weekday::Sat);
        assert!(cal().is_working_day(d("2023-10-07")).expect("2023"));
        assert_eq!(d("2023-10-08").weekday(), Weekday::Sun);
        assert!(cal().is_working_day(d("2023-10-08")).expect("2023"));
    }

    #[test]
    fn spring_festival_2024() {
        for day in 10..=17 {
            let date = NaiveDate::from_ymd_opt(2024, 2, day).expect("date");
            assert!(!cal().is_working_day(date).expect("2024"), "{date}");
        }
        assert!(cal().is_working_day(d("2024-02-04")).expect("2024")); // Sunday, 调休
        assert!(cal().is_working_day(d("2024-02-18")).expect("2024")); // Sunday, 调休
        assert!(cal().is_working_day(d("2024-02-09")).expect("2024")); // Friday, 除夕 worked
    }

    #[test]
    fn weekday_rule_fills_only_missing_years() {
        let c = cal().with_weekday_rule([2026, 2027]);
        assert!(c.covers(2027));
        assert_eq!(c.is_working_day(d("2027-01-01")), Ok(true)); // a Friday, no holidays known
        assert_eq!(c.is_working_day(d("2027-01-02")), Ok(false)); // Saturday
        // 2026 keeps its real holidays
        assert_eq!(c.is_working_day(d("2026-10-01")), Ok(false));
    }

    #[test]
    fn years_needed_from_first_november() {
        assert_eq!(cal().years_needed(d("2026-10-31")), Vec::<i32>::new());
        assert_eq!(cal().years_needed(d("2026-11-01")), vec![2027]);
        assert_eq!(cal().years_needed(d("2026-12-06")), vec![2027]);
        assert_eq!(cal().years_needed(d("2027-03-01")), vec![2027]);
        assert_eq!(cal().years_needed(d("2025-11-20")), Vec::<i32>::new());
    }

    #[test]
    fn a_year_round_trips_through_year_json() {
        let text = cal().year_json(2024).expect("2024");
        let back = HolidayCalendar::from_json(&text).expect("parses");
        assert_eq!(back.years(), vec![2024]);
        assert_eq!(back.is_working_day(d("2024-02-04")), Ok(true));
        assert_eq!(back.is_working_day(d("2024-02-12")), Ok(false));
        assert_eq!(cal().year_json(2030), None);
    }

    #[test]
    fn unknown_year_is_refused_not_guessed() {
        assert_eq!(
            cal().is_working_day(d("2030-01-02")),
            Err(CalendarError::YearMissing(2030))
        );
        assert_eq!(
            cal().is_working_day(d("2017-12-29")),
            Err(CalendarError::YearMissing(2017))
        );
    }

    // --- holiday_name ------------------------------------------------------------------

    #[test]
    fn holiday_names_come_from_the_file() {
        assert_eq!(cal().holiday_name(d("2023-10-01")), Some("National Day"));
        assert_eq!(
            cal().holiday_name(d("2023-09-29")),
            Some("Mid-autumn Festival")
        );
        assert_eq!(cal().holiday_name(d("2024-02-10")), Some("Spring Festival"));
        assert_eq!(cal().holiday_name(d("2026-01-01")), Some("New Year's Day"));
    }

    #[test]
    fn no_holiday_name_for_workdays_makeup_days_or_unknown_years() {
        assert_eq!(cal().holiday_name(d("2023-10-09")), None);
        assert_eq!(cal().holiday_name(d("2023-10-07")), None);
        assert_eq!(cal().holiday_name(d("2023-10-14")), None);
        assert_eq!(cal().holiday_name(d("2030-10-01")), None);
    }

    // --- add_working_days --------------------------------------------------------------

    #[test]
    fn add_zero_is_start_even_on_a_holiday_or_unknown_year() {
        assert_eq!(
            cal().add_working_days(d("2023-10-01"), 0),
            Ok(d("2023-10-01"))
        );
        assert_eq!(
            cal().add_working_days(d("2030-05-05"), 0),
            Ok(d("2030-05-05"))
        );
    }

    #[test]
    fn add_one_on_an_ordinary_week() {
        assert_eq!(
            cal().add_working_days(d("2023-10-09"), 1),
            Ok(d("2023-10-10"))
        );
        // Friday + 1 → Monday.
        assert_eq!(
            cal().add_working_days(d("2023-10-13"), 1),
            Ok(d("2023-10-16"))
        );
    }

    #[test]
    fn add_across_national_day_lands_on_makeup_saturday() {
        assert_eq!(
            cal().add_working_days(d("2023-09-28"), 1),
            Ok(d("2023-10-07"))
        );
        assert_eq!(
            cal().add_working_days(d("2023-09-27"), 3),
            Ok(d("2023-10-08"))
        );
        assert_eq!(
            cal().add_working_days(d("2023-09-28"), 3),
            Ok(d("2023-10-09"))
        );
    }

    #[test]
    fn add_starting_inside_a_holiday() {
        assert_eq!(
            cal().add_working_days(d("2023-10-01"), 1),
            Ok(d("2023-10-07"))
        );
    }

    #[test]
    fn add_across_spring_festival_2024() {
        assert_eq!(
            cal().add_working_days(d("2024-02-08"), 2),
            Ok(d("2024-02-18"))
        );
        assert_eq!(
            cal().add_working_days(d("2024-02-03"), 1),
            Ok(d("2024-02-04"))
        );
        assert_eq!(
            cal().add_working_days(d("2024-02-05"), 10),
            Ok(d("2024-02-23"))
        );
    }

    #[test]
    fn add_across_year_end_into_2026() {
        // 2026-01-01..03 off; Sunday 2026-01-04 is a make-up working day.
        assert_eq!(
            cal().add_working_days(d("2025-12-31"), 1),
            Ok(d("2026-01-04"))
        );
        assert_eq!(
            cal().add_working_days(d("2025-12-31"), 3),
            Ok(d("2026-01-06"))
        );
    }

    #[test]
    fn add_running_into_an_unknown_year_fails() {
        assert_eq!(
            cal().add_working_days(d("2026-12-28"), 5),
            Err(CalendarError::YearMissing(2027))
        );
        assert_eq!(
            cal().add_working_days(d("2030-01-07"), 1),
            Err(CalendarError::YearMissing(2030))
        );
    }

    // --- working_days_between ----------------------------------------------------------

    #[test]
    fn between_is_half_open() {
        // (Mon, Tue] = 1; (Mon, Mon] = 0.
        assert_eq!(
            cal().working_days_between(d("2023-10-09"), d("2023-10-10")),
            Ok(1)
        );
        assert_eq!(
            cal().working_days_between(d("2023-10-09"), d("2023-10-09")),
            Ok(0)
        );
    }

    #[test]
    fn between_reversed_is_zero_without_looking_up_years() {
        assert_eq!(
            cal().working_days_between(d("2023-10-10"), d("2023-10-09")),
            Ok(0)
        );
        assert_eq!(
            cal().working_days_between(d("2031-01-10"), d("2030-01-01")),
            Ok(0)
        );
    }

    #[test]
    fn between_across_national_day_counts_makeup_weekend() {
        // 2023-10-07, 10-08 (调休) and 10-09.
        assert_eq!(
            cal().working_days_between(d("2023-09-28"), d("2023-10-09")),
            Ok(3)
        );
        assert_eq!(
            cal().working_days_between(d("2023-09-28"), d("2023-10-06")),
            Ok(0)
        );
    }

    #[test]
    fn between_across_year_end() {
        // 2026-01-04 (Sunday, 调休), 01-05, 01-06.
        assert_eq!(
            cal().working_days_between(d("2025-12-31"), d("2026-01-06")),
            Ok(3)
        );
    }

    #[test]
    fn between_running_into_2027_fails() {
        assert_eq!(
            cal().working_days_between(d("2026-12-30"), d("2027-01-05")),
            Err(CalendarError::YearMissing(2027))
        );
    }

    #[test]
    fn between_undoes_add() {
        for start in ["2023-09-20", "2024-02-01", "2025-12-20", "2023-10-07"] {
            for n in 0..40 {
                let end = cal().add_working_days(d(start), n).expect("known years");
                assert_eq!(
                    cal().working_days_between(d(start), end),
                    Ok(n),
                    "{start} + {n}"
                );
            }
        }
    }

    // --- from_json ---------------------------------------------------------------------

    #[test]
    fn from_json_accepts_a_minimal_year() {
        let c = HolidayCalendar::from_json(&one_year(2027, &["2027-01-01"], &["2027-01-09"]))
            .expect("valid");
        assert_eq!(c.years(), vec![2027]);
        assert!(!c.is_working_day(d("2027-01-01")).expect("2027"));
        assert!(c.is_working_day(d("2027-01-09")).expect("2027")); // Saturday
        assert_eq!(c.holiday_name(d("2027-01-01")), Some("Test Holiday"));
    }

    #[test]
    fn from_json_makeup_days_may_be_omitted() {
        let c = HolidayCalendar::from_json(
            r#"{"years": {"2027": {"holidays": [{"date": "2027-01-01", "name": "New Year's Day"}]}}}"#,
        )
        .expect("valid");
        assert!(c.covers(2027));
    }

    #[test]
    fn from_json_refuses_a_weekday_makeup_day() {
        // 2027-01-11 is a Monday.
        let err = HolidayCalendar::from_json(&one_year(2027, &[], &["2027-01-11"]))
            .expect_err("weekday make-up day");
        let CalendarError::Invalid(why) = &err else {
            panic!("expected Invalid, got {err:?}");
        };
        assert!(why.contains("2027-01-11"), "{why}");
        assert!(why.contains("weekend"), "{why}");
    }

    #[test]
    fn from_json_refuses_a_date_outside_its_year() {
        let err = HolidayCalendar::from_json(&one_year(2027, &["2028-01-01"], &[]))
            .expect_err("wrong year");
        let CalendarError::Invalid(why) = &err else {
            panic!("expected Invalid, got {err:?}");
        };
        assert!(why.contains("outside the year 2027"), "{why}");
        assert!(why.contains("years.2027.holidays[0]"), "{why}");
    }

    #[test]
    fn from_json_refuses_a_day_both_off_and_worked() {
        let err = HolidayCalendar::from_json(&one_year(2027, &["2027-01-09"], &["2027-01-09"]))
            .expect_err("both");
        assert!(
            matches!(&err, CalendarError::Invalid(w) if w.contains("both")),
            "{err:?}"
        );
    }

    #[test]
    fn from_json_refuses_a_bad_date() {
        let err = HolidayCalendar::from_json(&one_year(2027, &["2027-02-30"], &[]))
            .expect_err("no such day");
        assert!(
            matches!(&err, CalendarError::Invalid(w) if w.contains("2027-02-30")),
            "{err:?}"
        );
    }

    #[test]
    fn from_json_refuses_a_duplicate_date() {
        let err = HolidayCalendar::from_json(&one_year(2027, &["2027-01-01", "2027-01-01"], &[]))
            .expect_err("duplicate");
        assert!(
            matches!(&err, CalendarError::Invalid(w) if w.contains("twice")),
            "{err:?}"
        );
    }

    #[test]
    fn from_json_refuses_a_bad_year_key() {
        let text = r#"{"years": {"next": {"holidays": []}}}"#;
        let err = HolidayCalendar::from_json(text).expect_err("bad key");
        assert!(
            matches!(&err, CalendarError::Invalid(w) if w.contains("four-digit")),
            "{err:?}"
        );
    }

    #[test]
    fn from_json_refuses_broken_json_and_unknown_fields() {
        assert!(matches!(
            HolidayCalendar::from_json("{"),
            Err(CalendarError::Invalid(_))
        ));
        let typo = r#"{"years": {"2027": {"holidays": [], "makeup_workday": []}}}"#;
        let err = HolidayCalendar::from_json(typo).expect_err("unknown field");
        assert!(
            matches!(&err, CalendarError::Invalid(w) if w.contains("years.2027")),
            "{err:?}"
        );
    }

    // --- merged ------------------------------------------------------------------------

    #[test]
    fn merged_adds_a_year() {
        let y2027 =
            HolidayCalendar::from_json(&one_year(2027, &["2027-01-01"], &[])).expect("valid");
        let c = cal().merged(&y2027);
        assert_eq!(c.years(), (2018..=2027).collect::<Vec<_>>());
        assert!(!c.is_working_day(d("2027-01-01")).expect("2027"));
        assert!(c.is_working_day(d("2027-01-04")).expect("2027"));
        // The year-end walk that failed on the built-in calendar now succeeds:
        // 2026-12-29, 12-30, 12-31, 2027-01-04, 01-05.
        assert_eq!(c.add_working_days(d("2026-12-28"), 5), Ok(d("2027-01-05")));
        // The built-in calendar itself is unchanged.
        assert!(!cal().covers(2027));
    }

    #[test]
    fn merged_replaces_a_whole_year() {
        let bare_2026 =
            HolidayCalendar::from_json(&one_year(2026, &["2026-12-25"], &[])).expect("valid");
        let c = cal().merged(&bare_2026);
        assert!(c.is_working_day(d("2026-01-01")).expect("2026")); // no longer listed
        assert!(!c.is_working_day(d("2026-01-04")).expect("2026")); // Sunday, no 调休
        assert!(!c.is_working_day(d("2026-12-25")).expect("2026"));
        // Other years untouched.
        assert_eq!(c.holiday_name(d("2025-10-01")), Some("National Day"));
    }

    #[test]
    fn missing_years_lists_gaps() {
        assert_eq!(cal().missing_years(2025, 2028), vec![2027, 2028]);
        assert!(cal().missing_years(2018, 2026).is_empty());
        assert!(cal().missing_years(2026, 2025).is_empty());
    }

    // --- messages ----------------------------------------------------------------------

    #[test]
    fn messages_in_both_languages() {
        let e = CalendarError::YearMissing(2030);
        assert!(e.to_string().contains("2030"));
        assert_eq!(
            e.message_zh(),
            "节假日日历缺少2030年的数据，请导入当年国务院节假日安排"
        );
        let e = CalendarError::Invalid("years.2027: oops".into());
        assert_eq!(e.to_string(), "invalid holiday calendar: years.2027: oops");
        assert_eq!(e.message_zh(), "节假日日历数据有误：years.2027: oops");
    }
}

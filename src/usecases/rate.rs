//! 好差评: the applicant rates a concluded case, once. A low rating must say why, so the
//! department can improve.

use super::{Error, Result};
use crate::domain::form::FieldIssue;
use crate::state::AppState;
use crate::store::CaseRow;

/// The rating given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rated {
    /// The case number.
    pub case_no: String,
    /// The level, 5 (非常满意) to 1 (非常不满意).
    pub level: i16,
}

/// The 好差评 levels, 5 (非常满意) to 1 (非常不满意), as (Chinese, English) labels.
pub fn rating_labels(level: i16) -> Option<(&'static str, &'static str)> {
    match level {
        5 => Some(("非常满意", "Very satisfied")),
        4 => Some(("满意", "Satisfied")),
        3 => Some(("基本满意", "Neutral")),
        2 => Some(("不满意", "Dissatisfied")),
        1 => Some(("非常不满意", "Very dissatisfied")),
        _ => None,
    }
}

/// Checks a rating: one of five levels, with a comment below 3 (差评 must say why), and a
/// comment of at most 1,000 characters.
pub fn check_rating(level: i16, comment: Option<&str>) -> std::result::Result<(), Vec<FieldIssue>> {
    let mut issues = Vec::new();
    let issue = |field: &str, zh: &str, en: &str| FieldIssue {
        field: field.into(),
        zh: zh.into(),
        en: en.into(),
    };
    if rating_labels(level).is_none() {
        issues.push(issue(
            "rating",
            "评价等级应为 1 到 5。",
            "The rating must be 1 to 5.",
        ));
    } else if level < 3 && comment.is_none_or(|c| c.trim().is_empty()) {
        issues.push(issue(
            "comment",
            "不满意的评价请说明原因，以便改进。",
            "Please say what went wrong when you are dissatisfied, so it can be improved.",
        ));
    }
    if comment.is_some_and(|c| c.chars().count() > 1000) {
        issues.push(issue(
            "comment",
            "评价内容不超过1000字。",
            "The comment may be at most 1000 characters.",
        ));
    }
    if issues.is_empty() {
        Ok(())
    } else {
        Err(issues)
    }
}

/// Rates a case its applicant owns: only once it is concluded, and only once.
pub async fn rate(app: &AppState, c: &CaseRow, level: i16, comment: Option<&str>) -> Result<Rated> {
    if c.concluded_on.is_none() {
        return Err(Error::conflict(
            "办结后才能评价。",
            "A case can be rated once it is concluded.",
        ));
    }
    check_rating(level, comment).map_err(Error::Invalid)?;
    let comment = comment.map(str::trim).filter(|c| !c.is_empty());
    if !app
        .store
        .rate_case(c.id, level, comment, chrono::Utc::now())
        .await?
    {
        return Err(Error::conflict(
            "该办件已评价过，每件只能评价一次。",
            "This case has already been rated; each case is rated once.",
        ));
    }
    metrics::counter!("onewindow_ratings_total", "level" => level.to_string()).increment(1);
    Ok(Rated {
        case_no: c.case_no.clone(),
        level,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn low_ratings_need_a_comment() {
        assert!(check_rating(5, None).is_ok());
        assert!(check_rating(3, None).is_ok());
        assert_eq!(
            check_rating(2, None).expect_err("comment")[0].field,
            "comment"
        );
        assert!(check_rating(1, Some("等了很久")).is_ok());
        assert_eq!(check_rating(6, None).expect_err("range")[0].field, "rating");
        let long = "慢".repeat(1001);
        assert_eq!(
            check_rating(5, Some(&long)).expect_err("too long")[0].field,
            "comment"
        );
    }
}

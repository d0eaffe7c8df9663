//! The pager of a list page that pages by cursor: "next" carries the cursor of the
//! last row shown (`before=`) and the position of the next page's first row (`from=`,
//! for "21–40 of …" only); a page reached by cursor offers the first page instead of a
//! "previous" one. A list asked by `page=` (older links) still goes back by number. A
//! count that stopped at the cap reads "10,000+" (en) / "10000+" (zh).

use minijinja::{Value, context};
use serde::Deserialize;

use crate::domain::lang::Lang;
use crate::store::{COUNT_CAP, Cursor};

/// Where a list page begins, from its query string: a cursor (`before`, with `from`
/// for display), or a page number. A malformed cursor or number is ignored: the page
/// shows the list from its start, never an error page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListAt {
    /// Continue after this row.
    pub before: Option<Cursor>,
    /// The page number, when paged by number (1 otherwise).
    pub page: i64,
    /// The position of this page's first row, from 1.
    pub from: i64,
}

/// The paging parameters of a list page.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct ListQuery {
    /// The `next` cursor of the page before.
    pub before: Option<String>,
    /// The position of the first row (display only).
    pub from: Option<i64>,
    /// The page number (older links).
    pub page: Option<i64>,
}

impl ListAt {
    /// Where the page begins, `per` rows a page.
    pub fn of(before: Option<&str>, from: Option<i64>, page: Option<i64>, per: i64) -> ListAt {
        match before.filter(|b| !b.is_empty()).map(Cursor::decode) {
            Some(Ok(c)) => ListAt {
                before: Some(c),
                page: 1,
                from: from
                    .filter(|n| (1..=i64::from(i32::MAX)).contains(n))
                    .unwrap_or(1),
            },
            _ => {
                let page = page.unwrap_or(1).clamp(1, 100_000);
                ListAt {
                    before: None,
                    page,
                    from: (page - 1) * per + 1,
                }
            }
        }
    }

    /// The rows the store skips (none after a cursor).
    pub fn offset(&self, per: i64) -> i64 {
        if self.before.is_some() {
            0
        } else {
            (self.page - 1) * per
        }
    }
}

/// A count as a page shows it: the number, or "10,000+" when it stopped at the cap.
pub fn shown_total(total: i64, capped: bool, lang: Lang) -> Value {
    if capped {
        Value::from(match lang {
            Lang::Zh => format!("{COUNT_CAP}+"),
            Lang::En => "10,000+".to_owned(),
        })
    } else {
        Value::from(total)
    }
}

/// The pager's context (`components.html` `pager`): `href(query)` is the list's URL
/// with its filters and the given paging query (`""` for the first page).
pub fn pager(
    href: impl Fn(&str) -> String,
    at: ListAt,
    shown: usize,
    total: Value,
    next: Option<Cursor>,
) -> Value {
    let from = if shown == 0 { 0 } else { at.from };
    let to = if shown == 0 {
        0
    } else {
        at.from + shown as i64 - 1
    };
    let first = at.before.is_some().then(|| href(""));
    let prev = (at.before.is_none() && at.page > 1).then(|| {
        if at.page == 2 {
            href("")
        } else {
            href(&format!("page={}", at.page - 1))
        }
    });
    let next = next.map(|c| href(&format!("before={}&from={}", c.encode(), to + 1)));
    context! { from, to, total, first, prev, next }
}

/// `path` with `filters` (a query string without paging) and `paging` joined.
pub fn list_href(path: &str, filters: &str, paging: &str) -> String {
    let q: Vec<&str> = [filters, paging]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect();
    if q.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", q.join("&"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use uuid::Uuid;

    #[test]
    fn a_cursor_wins_and_garbage_starts_at_the_top() {
        let c = Cursor {
            at: Utc::now(),
            id: Uuid::nil(),
            due: None,
        };
        let text = c.encode();
        let at = ListAt::of(Some(&text), Some(41), Some(7), 20);
        assert!(at.before.is_some());
        assert_eq!((at.page, at.from, at.offset(20)), (1, 41, 0));
        let at = ListAt::of(Some("garbage"), Some(41), None, 20);
        assert_eq!(at, ListAt::of(None, None, None, 20));
        assert_eq!((at.page, at.from, at.offset(20)), (1, 1, 0));
        let at = ListAt::of(None, None, Some(3), 20);
        assert_eq!((at.page, at.from, at.offset(20)), (3, 41, 40));
        assert_eq!(ListAt::of(None, None, Some(-5), 20).page, 1);
        assert_eq!(ListAt::of(Some(&text), Some(-5), None, 20).from, 1);
    }

    #[test]
    fn next_carries_the_cursor_and_the_position() {
        let c = Cursor {
            at: Utc::now(),
            id: Uuid::nil(),
            due: None,
        };
        let href = |q: &str| list_href("/me/cases", "status=x", q);
        let p = pager(
            href,
            ListAt::of(None, None, Some(2), 20),
            20,
            Value::from(45),
            Some(c),
        );
        assert_eq!(p.get_attr("from").ok(), Some(Value::from(21)));
        assert_eq!(p.get_attr("to").ok(), Some(Value::from(40)));
        assert_eq!(
            p.get_attr("next").ok().map(|v| v.to_string()),
            Some(format!("/me/cases?status=x&before={}&from=41", c.encode()))
        );
        assert_eq!(
            p.get_attr("prev").ok().map(|v| v.to_string()),
            Some("/me/cases?status=x".to_owned())
        );
        assert!(p.get_attr("first").is_ok_and(|v| v.is_none()));
        let p = pager(
            href,
            ListAt::of(Some(&c.encode()), Some(41), None, 20),
            5,
            Value::from(45),
            None,
        );
        assert_eq!(p.get_attr("to").ok(), Some(Value::from(45)));
        assert!(p.get_attr("next").is_ok_and(|v| v.is_none()));
        assert!(p.get_attr("prev").is_ok_and(|v| v.is_none()));
        assert_eq!(
            p.get_attr("first").ok().map(|v| v.to_string()),
            Some("/me/cases?status=x".to_owned())
        );
    }

    #[test]
    fn a_capped_count_reads_ten_thousand_plus() {
        assert_eq!(shown_total(7, false, Lang::En), Value::from(7));
        assert_eq!(
            shown_total(COUNT_CAP, true, Lang::En).to_string(),
            "10,000+"
        );
        assert_eq!(shown_total(COUNT_CAP, true, Lang::Zh).to_string(), "10000+");
    }
}

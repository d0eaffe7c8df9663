//! Case lists that stay fast at a million cases: keyset pages, capped counts, and a
//! merge of index walks where one walk cannot give the order.
//!
//! A list is ordered by `(created_at, id)` (newest or oldest first) or by its due date
//! and then newest first. An index `(department, status, created_at DESC, id DESC)` gives
//! that order for one department and one status, but PostgreSQL (15) cannot walk it in
//! order across `department IN (8 departments) AND status IN (3 statuses)`: it would
//! read and sort every matching row. So such a list is asked as one small query per
//! (department, status) pair — each walks its index from the cursor and stops after a
//! page — and the pairs' rows are merged (`UNION`, which also drops a case two
//! branches found, as "my cases" of an enterprise user may) and cut to the page. The
//! same holds for "my cases" of a user acting for an enterprise: their own cases and
//! the enterprise's are two walks. Everything else is one query. The count stops at
//! [`COUNT_CAP`] + 1 rows. The migration `list_indexes` holds the indexes.

use super::cases::{CaseFilter, CaseRow, CaseSort, case_from_row, contains_pattern};
use super::db::{Exec, Q};
use super::paging::{COUNT_CAP, Cursor, capped};
use super::{SqlStore, StoreResult};

/// A page of a case list.
#[derive(Debug, Clone, Default)]
pub struct CasePage {
    /// The cases of this page, in the list's order.
    pub rows: Vec<CaseRow>,
    /// How many cases match the filter (whatever the page), at most [`COUNT_CAP`].
    pub total: i64,
    /// More than [`COUNT_CAP`] match: `total` is the cap ("10,000+").
    pub total_capped: bool,
    /// Where the next page begins; none on the last page.
    pub next: Option<Cursor>,
}

/// At most this many walks are merged; a filter asking for more is one query.
const MAX_BRANCHES: usize = 64;

/// Whose cases a walk reads.
#[derive(Debug, Clone, Copy)]
enum Who<'a> {
    Anyone,
    Account(uuid::Uuid),
    Enterprise(&'a str),
}

/// One walk: whose, of which department, in which status.
#[derive(Debug, Clone, Copy)]
struct Branch<'a> {
    who: Who<'a>,
    department: Option<&'a str>,
    status: Option<&'a str>,
}

/// The walks a filter splits into (none when it can match nothing).
fn branches(f: &CaseFilter) -> Vec<Branch<'_>> {
    let who: Vec<Who<'_>> = match (f.applicant, &f.enterprise) {
        (Some(a), Some(uscc)) => vec![Who::Account(a), Who::Enterprise(uscc)],
        (Some(a), None) => vec![Who::Account(a)],
        (None, _) => vec![Who::Anyone],
    };
    let departments: Vec<Option<&str>> = match &f.departments {
        Some(ds) => ds.iter().map(|d| Some(d.as_str())).collect(),
        None => vec![None],
    };
    let statuses: Vec<Option<&str>> = if f.statuses.is_empty() {
        vec![None]
    } else {
        f.statuses.iter().map(|s| Some(s.as_str())).collect()
    };
    let mut out = Vec::new();
    for &who in &who {
        for &department in &departments {
            for &status in &statuses {
                out.push(Branch {
                    who,
                    department,
                    status,
                });
            }
        }
    }
    out
}

/// The `ORDER BY` of a list (its columns are in every walk's select list).
fn order(sort: CaseSort) -> &'static str {
    match sort {
        CaseSort::Newest => " ORDER BY created_at DESC, id DESC",
        CaseSort::Oldest => " ORDER BY created_at, id",
        // without a due date last (PostgreSQL's ascending default, SQLite's by the
        // clause); the index `cases_department_status_due` serves it on PostgreSQL
        CaseSort::DueSoonest => " ORDER BY due_on NULLS LAST, created_at DESC, id DESC",
    }
}

/// The rows after the cursor, in the list's order.
fn after(q: Q, sort: CaseSort, c: &Cursor) -> Q {
    match sort {
        CaseSort::Newest => q
            .push(" AND (created_at, id) < (")
            .push_bind(c.at)
            .push(", ")
            .push_bind(c.id)
            .push(")"),
        CaseSort::Oldest => q
            .push(" AND (created_at, id) > (")
            .push_bind(c.at)
            .push(", ")
            .push_bind(c.id)
            .push(")"),
        CaseSort::DueSoonest => match c.due {
            Some(d) => q
                .push(" AND (due_on IS NULL OR due_on > ")
                .push_bind(d)
                .push(" OR (due_on = ")
                .push_bind(d)
                .push(" AND (created_at, id) < (")
                .push_bind(c.at)
                .push(", ")
                .push_bind(c.id)
                .push(")))"),
            None => q
                .push(" AND due_on IS NULL AND (created_at, id) < (")
                .push_bind(c.at)
                .push(", ")
                .push_bind(c.id)
                .push(")"),
        },
    }
}

/// The filters every walk shares (all but whose, department and status).
fn common(mut q: Q, f: &CaseFilter) -> Q {
    if let Some(s) = &f.service {
        q = q.push(" AND service_code = ").push_bind(s);
    }
    if let Some(d) = f.due_by {
        q = q.push(" AND due_on <= ").push_bind(d);
    }
    if let Some(d) = f.due_from {
        q = q.push(" AND due_on >= ").push_bind(d);
    }
    if let Some(t) = f.updated_since {
        q = q.push(" AND updated_at >= ").push_bind(t);
    }
    if let Some(c) = &f.channel {
        q = q.push(" AND channel = ").push_bind(c);
    }
    if let Some(t) = f.text.as_deref().filter(|t| !t.trim().is_empty()) {
        let p = contains_pattern(t);
        q = q
            .push(" AND (LOWER(case_no) LIKE ")
            .push_bind(p.clone())
            .push(" ESCAPE '\\' OR LOWER(applicant_name) LIKE ")
            .push_bind(p)
            .push(" ESCAPE '\\')");
    }
    q
}

/// The `WHERE` of the whole list (every filter, no cursor), for its count and when it
/// is not split into walks.
pub(super) fn case_filter(q: Q, f: &CaseFilter) -> Q {
    list_filter(q, f, None)
}

/// As [`case_filter`]; with `who`, of that applicant's (or enterprise's) part only.
fn list_filter(q: Q, f: &CaseFilter, who: Option<Who<'_>>) -> Q {
    let mut q = q.push(" WHERE 1 = 1");
    q = match who {
        Some(w) => only_whose(q, w),
        None => match (f.applicant, &f.enterprise) {
            (Some(a), Some(uscc)) => q
                .push(" AND (applicant_account = ")
                .push_bind(a)
                .push(" OR (applicant_kind = 'enterprise' AND applicant_uscc = ")
                .push_bind(uscc.clone())
                .push("))"),
            (Some(a), None) => only_whose(q, Who::Account(a)),
            (None, _) => q,
        },
    };
    if let Some(ds) = &f.departments {
        // Never an empty `IN ()`: no department means no case.
        q = q
            .push(" AND department IN (")
            .push_list(std::iter::once("").chain(ds.iter().map(String::as_str)))
            .push(")");
    }
    if !f.statuses.is_empty() {
        q = q.push(" AND status IN (").push_list(&f.statuses).push(")");
    }
    common(q, f)
}

/// The cases of one applicant (or enterprise).
fn only_whose(q: Q, who: Who<'_>) -> Q {
    match who {
        Who::Anyone => q,
        Who::Account(a) => q.push(" AND applicant_account = ").push_bind(a),
        // the literal matches the partial index `cases_enterprise_time`
        Who::Enterprise(uscc) => q
            .push(" AND applicant_kind = 'enterprise' AND applicant_uscc = ")
            .push_bind(uscc),
    }
}

/// The `WHERE` of one walk (with the cursor).
fn branch_filter(mut q: Q, f: &CaseFilter, b: &Branch<'_>) -> Q {
    q = only_whose(q.push(" WHERE 1 = 1"), b.who);
    if let Some(d) = b.department {
        q = q.push(" AND department = ").push_bind(d);
    }
    if let Some(s) = b.status {
        q = q.push(" AND status = ").push_bind(s);
    }
    q = common(q, f);
    match &f.before {
        Some(c) => after(q, f.sort, c),
        None => q,
    }
}

/// A count of at most [`COUNT_CAP`] + 1 matching rows (`who`: of that part only).
fn capped_count(f: &CaseFilter, who: Option<Who<'_>>) -> Q {
    list_filter(
        Q::new("SELECT COUNT(*) AS n FROM (SELECT 1 AS x FROM cases"),
        f,
        who,
    )
    .push(" LIMIT ")
    .push_bind(COUNT_CAP + 1)
    .push(") AS capped")
}

impl SqlStore {
    /// The capped count of a list: at most [`COUNT_CAP`] + 1 rows are read. The cases
    /// of an applicant and of the enterprise they act for are counted as two walks of
    /// their own indexes (the `OR` of both would read every heap row it matches); more
    /// than the cap in either is more than the cap in all, and only when both are below
    /// it are they merged (a case can be in both).
    async fn count(&self, f: &CaseFilter) -> StoreResult<i64> {
        let (Some(a), Some(uscc)) = (f.applicant, &f.enterprise) else {
            return self.db.fetch_one(capped_count(f, None)).await?.get("n");
        };
        let mine = self
            .db
            .fetch_one(capped_count(f, Some(Who::Account(a))))
            .await?
            .get::<i64>("n")?;
        let theirs = self
            .db
            .fetch_one(capped_count(f, Some(Who::Enterprise(uscc))))
            .await?
            .get::<i64>("n")?;
        if mine > COUNT_CAP || theirs > COUNT_CAP {
            return Ok(COUNT_CAP + 1);
        }
        if mine == 0 || theirs == 0 {
            return Ok(mine + theirs);
        }
        let q = list_filter(
            Q::new("SELECT COUNT(*) AS n FROM (SELECT id FROM cases"),
            f,
            Some(Who::Account(a)),
        )
        .push(" UNION SELECT id FROM cases");
        let q = list_filter(q, f, Some(Who::Enterprise(uscc))).push(") AS u");
        self.db.fetch_one(q).await?.get("n")
    }

    /// A page of the cases matching `f`: from its cursor (or offset), at most
    /// `f.limit`, with the capped count and the next page's cursor.
    pub(super) async fn case_page_of(&self, f: &CaseFilter) -> StoreResult<CasePage> {
        if f.departments.as_ref().is_some_and(Vec::is_empty) {
            return Ok(CasePage::default());
        }
        let (total, total_capped) = capped(self.count(f).await?);
        let limit = f.limit.max(0);
        let offset = f.offset.max(0);
        // one row more than the page, to know whether another follows
        let take = limit.saturating_add(1);
        let branches = branches(f);
        let order = order(f.sort);
        let single = branches.len() == 1 || branches.len() > MAX_BRANCHES;
        let q = if single {
            let q = if branches.len() == 1 {
                branch_filter(Q::new("SELECT * FROM cases"), f, &branches[0])
            } else {
                let q = case_filter(Q::new("SELECT * FROM cases"), f);
                match &f.before {
                    Some(c) => after(q, f.sort, c),
                    None => q,
                }
            };
            q.push(order)
                .push(" LIMIT ")
                .push_bind(take)
                .push(" OFFSET ")
                .push_bind(offset)
        } else {
            // each walk gives at most what the page could need of it
            let each = offset.saturating_add(take);
            // only the sort key, which the index holds: an index-only walk
            let keys = "SELECT * FROM (SELECT id, created_at, due_on FROM cases";
            let mut q = Q::new("SELECT * FROM cases WHERE id IN (SELECT id FROM (");
            for (i, b) in branches.iter().enumerate() {
                if i > 0 {
                    q = q.push(" UNION ");
                }
                q = branch_filter(q.push(keys), f, b)
                    .push(order)
                    .push(" LIMIT ")
                    .push_bind(each)
                    .push(") AS b");
            }
            q.push(") AS u")
                .push(order)
                .push(" LIMIT ")
                .push_bind(take)
                .push(" OFFSET ")
                .push_bind(offset)
                .push(")")
                .push(order)
        };
        let mut rows = self
            .db
            .fetch_all_with(q, |r| case_from_row(r, &self.seal))
            .await?;
        let next = if rows.len() as i64 > limit {
            rows.truncate(limit as usize);
            rows.last().map(|c| Cursor {
                at: c.created_at,
                id: c.id,
                due: c.due_on,
            })
        } else {
            None
        };
        Ok(CasePage {
            rows,
            total,
            total_capped,
            next,
        })
    }
}

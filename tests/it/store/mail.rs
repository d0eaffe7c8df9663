//! The mail queue over the notices: claimed with a lease, oldest first, retried when
//! due, finished in one of the final states, counted and listed for operators.

use std::collections::HashSet;

use chrono::Duration;
use onewindow::store::{CaseWrite, MailCounts, MailOutcome, NoticeRow, Store, WriteOutcome};
use uuid::Uuid;

use super::{at, at_micros, case, claim_concurrently, event, notice, only, open};
use crate::backend_tests;
use crate::harness::Backend;

backend_tests!(
    mail_is_claimed_oldest_first_under_a_lease_and_finished,
    concurrent_claims_never_share_a_notice,
);

/// Writes a case at `secs` with these notices (queued for mail with it).
async fn with_notices(s: &dyn Store, secs: i64, titles: &[&str]) -> Vec<NoticeRow> {
    let c = case("A-0001", secs);
    let notices: Vec<NoticeRow> = titles
        .iter()
        .enumerate()
        .map(|(i, t)| notice(&c, t, at_micros(secs, i as i64)))
        .collect();
    let e = event(c.created_at, Some("submit"), Some("draft"), "submitted");
    let w = CaseWrite {
        notices: &notices,
        ..only(&e)
    };
    assert!(matches!(
        s.create_case(&c, w).await.expect("create"),
        WriteOutcome::Done
    ));
    notices
}

async fn mail_is_claimed_oldest_first_under_a_lease_and_finished(b: Backend) {
    let Some((_res, s)) = open(b).await else {
        return;
    };
    let n = with_notices(&*s, 0, &["一", "二", "三", "四"]).await;
    assert_eq!(
        s.mail_counts().await.expect("counts"),
        MailCounts {
            pending: 4,
            ..MailCounts::default()
        }
    );

    let first = s.claim_mail(at(10), at(130), 2).await.expect("claim");
    let ids: Vec<Uuid> = first.iter().map(|m| m.notice.id).collect();
    assert_eq!(ids, [n[0].id, n[1].id], "oldest first");
    assert_eq!(first[0].attempts, 0);
    assert_eq!(first[0].notice.title_zh, n[0].title_zh);
    assert_eq!(first[0].notice.account_id, n[0].account_id);
    assert_eq!(first[0].notice.created_at, n[0].created_at);
    // Leased: another worker gets the rest, and the leased ones only once the lease ends.
    let rest = s.claim_mail(at(11), at(131), 10).await.expect("claim");
    assert_eq!(
        rest.iter().map(|m| m.notice.id).collect::<Vec<_>>(),
        [n[2].id, n[3].id]
    );
    assert!(
        s.claim_mail(at(129), at(249), 10)
            .await
            .expect("held")
            .is_empty()
    );
    let again = s.claim_mail(at(131), at(251), 1).await.expect("expired");
    assert_eq!(
        again[0].notice.id, n[0].id,
        "a worker that died leaves it to another"
    );

    s.finish_mail(n[0].id, 1, &MailOutcome::Sent)
        .await
        .expect("sent");
    let retry_at = at_micros(200, 7);
    s.finish_mail(
        n[1].id,
        1,
        &MailOutcome::RetryAt {
            at: retry_at,
            error: "refused 451".into(),
        },
    )
    .await
    .expect("retry");
    s.finish_mail(
        n[2].id,
        3,
        &MailOutcome::Failed {
            error: "rejected 550".into(),
        },
    )
    .await
    .expect("failed");
    s.finish_mail(n[3].id, 0, &MailOutcome::NoMail)
        .await
        .expect("none");

    // A retry is due at its time, with its attempts so far; finished ones never return.
    assert!(
        s.claim_mail(retry_at - Duration::microseconds(1), at(999), 10)
            .await
            .expect("not yet")
            .is_empty()
    );
    let due = s.claim_mail(retry_at, at(999), 10).await.expect("due");
    assert_eq!(due.len(), 1);
    assert_eq!((due[0].notice.id, due[0].attempts), (n[1].id, 1));

    assert_eq!(
        s.mail_counts().await.expect("counts"),
        MailCounts {
            pending: 1,
            sent: 1,
            failed: 1,
            none: 1
        }
    );
    let failed = s.mail(Some("failed"), 10).await.expect("failed");
    assert_eq!(failed.len(), 1);
    let f = &failed[0];
    assert_eq!(f.id, n[2].id);
    assert_eq!(f.case_no, n[2].case_no);
    assert_eq!(f.created_at, n[2].created_at);
    assert_eq!(f.state, "failed");
    assert_eq!(f.attempts, 3);
    assert_eq!(f.last_error.as_deref(), Some("rejected 550"));
    assert_eq!(f.next_attempt_at, None);
    let pending = s.mail(Some("pending"), 10).await.expect("pending");
    assert_eq!(pending[0].next_attempt_at, Some(retry_at));
    assert_eq!(pending[0].last_error.as_deref(), Some("refused 451"));
    let sent = s.mail(Some("sent"), 10).await.expect("sent");
    assert_eq!((sent[0].attempts, sent[0].last_error.as_deref()), (1, None));

    let all: Vec<Uuid> = s
        .mail(None, 10)
        .await
        .expect("all")
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(all, [n[3].id, n[2].id, n[1].id, n[0].id], "newest first");
    assert_eq!(s.mail(None, 2).await.expect("limit").len(), 2);
    // Mail bookkeeping does not touch what the applicant reads.
    let account = n[0].account_id;
    assert_eq!(
        s.notifications(account, 10).await.expect("notices").len(),
        4
    );
    s.close().await;
}

async fn concurrent_claims_never_share_a_notice(b: Backend) {
    let Some((res, s)) = open(b).await else {
        return;
    };
    let mut all = HashSet::new();
    for i in 0..6 {
        let titles = ["a", "b", "c", "d"];
        all.extend(with_notices(&*s, i, &titles).await.iter().map(|n| n.id));
    }
    let claimed = claim_concurrently(&res, |worker| async move {
        let round = worker
            .claim_mail(at(100), at(10_000), 3)
            .await
            .expect("claim");
        round.into_iter().map(|m| m.notice.id).collect()
    })
    .await;
    assert_eq!(claimed, all);
    s.close().await;
}

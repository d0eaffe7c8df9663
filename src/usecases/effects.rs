//! What a case change tells others, written in the same transaction as the change: one
//! outbox event per routed department, and the in-app notice to the applicant. Pure: the
//! use cases decide the change, these functions derive its messages.

use chrono::Utc;
use serde_json::json;
use uuid::Uuid;

use crate::domain::case::{Action, Actor, CaseStatus};
use crate::domain::catalogue::Service;
use crate::store::{CaseRow, NoticeRow, OutboxRow};

/// The CloudEvents type of the event an action causes (part of the department contract:
/// a receiver branches on it, so the names never change; a new shape gets `.v2`).
pub fn event_type(action: Action) -> String {
    let name = match action {
        Action::Submit => "submitted",
        Action::Accept => "accepted",
        Action::NotAccept => "not_accepted",
        Action::RequestCorrection => "correction_requested",
        Action::SupplyCorrection => "corrected",
        Action::StartReview => "review_started",
        Action::Suspend => "suspended",
        Action::Resume => "resumed",
        Action::Conclude => "concluded",
        Action::Withdraw => "withdrawn",
    };
    format!("cn.gov.onewindow.case.{name}.v1")
}

/// Outbox rows for a change: one per routed department. The payload names the case and
/// what happened; the delivery side assembles the full application from the case when it
/// sends, so personal data is not copied into the outbox.
pub(super) fn outbox_for(service: &Service, c: &CaseRow, action: Action) -> Vec<OutboxRow> {
    service
        .routing
        .departments
        .iter()
        .map(|d| OutboxRow {
            id: Uuid::now_v7(),
            case_seq: 0,
            department: d.clone(),
            event_type: event_type(action),
            payload: json!({
                "case_no": c.case_no,
                "service_code": c.service_code,
                "service_version": c.service_version,
                "department": d,
                "status": c.status,
                "action": action.code(),
            }),
        })
        .collect()
}

/// The in-app message an applicant gets for a step, if it is news to them: not for what
/// they did themselves (except the receipt of their submission), and not for a walk-in
/// applicant without an account.
pub(super) fn notice_for(
    c: &CaseRow,
    service: &Service,
    action: Action,
    actor: Actor,
    note: Option<&str>,
) -> Option<NoticeRow> {
    let account = c.applicant.account_id?;
    if actor == Actor::Applicant && action != Action::Submit {
        return None;
    }
    let status = CaseStatus::from_code(&c.status)?;
    let (s_zh, s_en) = status.labels();
    let (title_zh, title_en) = match action {
        Action::Submit => ("申请已提交", "Application received"),
        Action::Accept => ("申请已受理", "Application accepted"),
        Action::NotAccept => ("申请不予受理", "Application not accepted"),
        Action::RequestCorrection => ("请补齐补正材料", "Please supply or correct materials"),
        Action::Conclude => ("办件已办结", "Your case is concluded"),
        Action::Suspend => ("办件进入特别程序", "Your case is in a special procedure"),
        Action::Resume => ("办件恢复审查", "Review of your case resumed"),
        Action::StartReview => ("办件审查中", "Your case is under review"),
        Action::SupplyCorrection | Action::Withdraw => ("办件状态更新", "Case updated"),
    };
    let reason_zh = note.map(|n| format!("说明：{n}")).unwrap_or_default();
    let reason_en = note.map(|n| format!(" Note: {n}")).unwrap_or_default();
    Some(NoticeRow {
        id: Uuid::now_v7(),
        account_id: account,
        case_id: c.id,
        case_no: c.case_no.clone(),
        title_zh: format!("{title_zh}：{}", service.name),
        title_en: format!("{title_en}: {}", service.name_en),
        body_zh: format!("办件编号 {}，当前状态：{s_zh}。{reason_zh}", c.case_no),
        body_en: format!("Case {}, now: {s_en}.{reason_en}", c.case_no),
        created_at: Utc::now(),
        read_at: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usecases::testing::{self, case_row, catalogue};

    #[test]
    fn event_types_follow_the_contract() {
        assert_eq!(
            event_type(Action::Submit),
            "cn.gov.onewindow.case.submitted.v1"
        );
        assert_eq!(
            event_type(Action::SupplyCorrection),
            "cn.gov.onewindow.case.corrected.v1"
        );
        assert_eq!(
            event_type(Action::Withdraw),
            "cn.gov.onewindow.case.withdrawn.v1"
        );
    }

    #[test]
    fn every_routed_department_gets_an_event_without_personal_data() {
        let cat = catalogue();
        let joint = cat.service(testing::NEWBORN).expect("joint service");
        let c = case_row(testing::NEWBORN);
        let rows = outbox_for(joint, &c, Action::Accept);
        assert_eq!(rows.len(), joint.routing.departments.len());
        for (row, dept) in rows.iter().zip(&joint.routing.departments) {
            assert_eq!(&row.department, dept);
            assert_eq!(row.payload["action"], "accept");
            assert!(row.payload.get("applicant").is_none());
        }
    }

    #[test]
    fn applicants_are_told_only_what_is_news_to_them() {
        let cat = catalogue();
        let service = cat.service(testing::SSC).expect("service");
        let mut c = case_row(testing::SSC);
        assert!(
            notice_for(&c, service, Action::Accept, Actor::Clerk, None).is_none(),
            "a walk-in applicant has no account to tell"
        );
        c.applicant.account_id = Some(Uuid::now_v7());
        c.status = "accepted".into();
        let n = notice_for(&c, service, Action::Accept, Actor::Clerk, Some("请带原件"))
            .expect("notice");
        assert!(n.body_zh.contains("已受理") && n.body_zh.contains("请带原件"));
        assert!(notice_for(&c, service, Action::Withdraw, Actor::Applicant, None).is_none());
        c.status = "submitted".into();
        assert!(notice_for(&c, service, Action::Submit, Actor::Applicant, None).is_some());
    }
}

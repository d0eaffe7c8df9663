//! Stepping a case: one step of the state machine, by any actor (applicant, clerk,
//! officer, department system).
//!
//! [`decide`] is pure: the state machine's verdict, a joint case's parts, and the
//! deadline effects (the clock starts at acceptance; a pause opens on entering 补齐补正 or
//! 特别程序 after acceptance and closes on leaving it; due dates move with pauses).
//! [`effects`] derives the history entry, the events and the notice. [`step`] checks the
//! materials of a correction, and writes everything with an optimistic version check,
//! deciding again on a concurrent change.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::effects::{notice_for, outbox_for};
use super::idempotency::{self, IdemKey, Kind};
use super::materials::{self, MaterialInput};
use super::{Actor, Error, Result, today};
use crate::domain::calendar::HolidayCalendar;
use crate::domain::case::{self, Action, CaseFacts, CaseStatus, ConclusionResult, Request};
use crate::domain::catalogue::{CaseKind, Service};
use crate::domain::deadline::{self, Pause};
use crate::state::AppState;
use crate::store::{CaseRow, CaseWrite, EventRow, NewMaterial, NoticeRow, OutboxRow, WriteOutcome};

/// What a step did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stepped {
    /// The case number.
    pub case_no: String,
    /// The status after the step.
    pub status: CaseStatus,
    /// The status before it.
    pub from: CaseStatus,
    /// The step taken.
    pub action: Action,
    /// The promised due date after the step (it moves when the clock pauses).
    pub due_on: Option<NaiveDate>,
}

/// The facts the state machine needs about a case.
pub fn facts(service: &Service, c: &CaseRow) -> CaseFacts {
    CaseFacts {
        accept_at_window: service.accept_at_window,
        immediate: service.case_kind == CaseKind::Immediate,
        was_accepted: c.accepted_on.is_some(),
    }
}

/// What the actor may do with the case now (empty when its service or status is unknown).
pub fn allowed_now(service: Option<&Service>, c: &CaseRow, actor: case::Actor) -> Vec<Action> {
    match (CaseStatus::from_code(&c.status), service) {
        (Some(s), Some(svc)) => case::allowed_actions(s, actor, facts(svc, c)),
        _ => Vec::new(),
    }
}

/// One department's conclusion of its part of a joint case (联办件).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JointPart {
    /// The department (USCC).
    pub department: String,
    /// `approved` or `rejected`.
    pub result: &'static str,
}

/// The verdict on a step: the case as it will be.
#[derive(Debug, Clone)]
pub struct Decision {
    /// The case after the step.
    pub next: CaseRow,
    /// The status before.
    pub from: CaseStatus,
    /// The status after.
    pub to: CaseStatus,
    /// A joint case's part concluded by this step.
    pub joint_part: Option<JointPart>,
}

impl Decision {
    /// A department concluded its part, and others' parts are still open: the case
    /// stays where it is. This is no news to the others, nor to the applicant.
    pub fn partial(&self) -> bool {
        self.joint_part.is_some() && self.to == self.from
    }
}

/// Decides a step on `current` at `now` (`today` in the city's time zone). Pure but for
/// a warning when the holiday calendar lacks a year.
pub fn decide(
    cal: &HolidayCalendar,
    service: &Service,
    current: &CaseRow,
    actor: &Actor,
    req: &Request,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> Result<Decision> {
    let from = CaseStatus::from_code(&current.status)
        .ok_or_else(|| anyhow::anyhow!("case {} has an unknown status", current.case_no))?;
    let facts = facts(service, current);
    let role = actor.role();
    let mut to = case::transition(from, req, role, facts)
        .map_err(|e| Error::from_transition(e, case::allowed_actions(from, role, facts)))?;
    let mut next = current.clone();
    let mut joint_part = None;
    if req.action == Action::Conclude && service.case_kind == CaseKind::Joint {
        let (parts, part, status) =
            conclude_part(service, &current.parts, actor, req.result, from, today)?;
        next.parts = parts;
        to = status;
        joint_part = Some(part);
    }
    next.status = to.code().to_owned();
    next.updated_at = now;
    if req.action == Action::Accept {
        next.accepted_on = Some(today);
    }
    let mut pauses = pauses_of(current);
    if let Some(accepted) = next.accepted_on {
        let entering_pause = to.clock_paused() && !from.clock_paused();
        let leaving_pause = from.clock_paused() && !to.clock_paused();
        if entering_pause && current.accepted_on.is_some() {
            pauses.push(Pause {
                from: today,
                to: None,
            });
        }
        if leaving_pause && let Some(open) = pauses.iter_mut().rev().find(|p| p.to.is_none()) {
            open.to = Some(today);
        }
        let (due, legal, provisional) = due_dates(cal, service, accepted, &pauses, today);
        next.due_on = due;
        next.legal_due_on = legal;
        next.due_provisional = provisional;
    }
    next.pauses = pauses_json(&pauses);
    if matches!(to, CaseStatus::Approved | CaseStatus::Rejected) {
        next.concluded_on = Some(today);
        let approved = to == CaseStatus::Approved;
        next.result = Some(if approved { "approved" } else { "rejected" }.to_owned());
    }
    Ok(Decision {
        next,
        from,
        to,
        joint_part,
    })
}

/// 联办件: each routed department concludes its own part; the case concludes when the last
/// one has (approved only if every part is approved). Answers the parts after this one,
/// the part, and the case's status after it.
fn conclude_part(
    service: &Service,
    parts: &Value,
    actor: &Actor,
    result: Option<ConclusionResult>,
    from: CaseStatus,
    today: NaiveDate,
) -> Result<(Value, JointPart, CaseStatus)> {
    let dept = actor
        .acting_department()
        .filter(|d| service.routing.departments.iter().any(|r| r == d))
        .ok_or_else(|| {
            Error::not_allowed(
                "联办件由各承办部门分别办结。",
                "Each department of a joint case concludes its own part.",
            )
        })?
        .to_owned();
    let mut parts = parts.as_object().cloned().unwrap_or_default();
    if parts.contains_key(&dept) {
        return Err(Error::conflict(
            "本部门已办结其承办部分。",
            "This department has already concluded its part.",
        ));
    }
    let result = result.map(|r| r.code()).unwrap_or("approved");
    parts.insert(
        dept.clone(),
        json!({ "result": result, "on": today.to_string() }),
    );
    let done = service
        .routing
        .departments
        .iter()
        .all(|d| parts.contains_key(d));
    let all_approved = parts.values().all(|p| p["result"] == "approved");
    let status = match (done, all_approved) {
        (false, _) => from,
        (true, true) => CaseStatus::Approved,
        (true, false) => CaseStatus::Rejected,
    };
    Ok((
        Value::Object(parts),
        JointPart {
            department: dept,
            result,
        },
        status,
    ))
}

/// What a step writes besides the case row.
pub struct Effects {
    /// The history entry.
    pub event: EventRow,
    /// Events for the routed departments (none for a partial joint conclusion).
    pub outbox: Vec<OutboxRow>,
    /// The applicant's notice, if the step is news to them.
    pub notices: Vec<NoticeRow>,
}

/// The history entry, events and notice of a decided step. Pure.
pub fn effects(
    service: &Service,
    d: &Decision,
    actor: &Actor,
    req: &Request,
    materials: &[NewMaterial],
) -> Effects {
    let event = EventRow {
        seq: 0,
        at: d.next.updated_at,
        actor: actor.role().code().to_owned(),
        actor_id: Some(actor.id()),
        actor_name: actor.name().to_owned(),
        action: Some(req.action.code().to_owned()),
        from_status: Some(d.from.code().to_owned()),
        to_status: d.to.code().to_owned(),
        note: req.note.clone().filter(|n| !n.trim().is_empty()),
        attachments: match &d.joint_part {
            Some(p) => json!([{ "department": p.department, "result": p.result }]),
            None => json!(materials
                .iter()
                .map(|m| json!({ "material": m.material_id, "upload_id": m.upload_id, "substituted": m.substituted }))
                .collect::<Vec<_>>()),
        },
    };
    if d.partial() {
        return Effects {
            event,
            outbox: Vec::new(),
            notices: Vec::new(),
        };
    }
    Effects {
        event,
        outbox: outbox_for(service, &d.next, req.action),
        notices: notice_for(
            &d.next,
            service,
            req.action,
            actor.role(),
            req.note.as_deref(),
        )
        .into_iter()
        .collect(),
    }
}

/// The material id of the result document (决定书, the licence issued …) a conclusion may
/// carry: an upload of the concluding officer's, recorded with the case's materials.
pub const RESULT_DOCUMENT: &str = "result_document";

/// Decisions made before giving up on a case that keeps changing underneath.
const ATTEMPTS: usize = 3;

/// Takes one step on `case` (as the caller's extractor read it), with new materials for a
/// correction. On a concurrent change the case is read again and the step decided again.
/// A repeat with the same idempotency key answers the first result.
pub async fn step(
    app: &AppState,
    case: CaseRow,
    actor: &Actor,
    req: Request,
    new_materials: &[MaterialInput],
    idem: Option<IdemKey>,
) -> Result<Stepped> {
    if let Some(earlier) = idempotency::earlier(app, idem.as_ref()).await? {
        return Ok(earlier);
    }
    let mut current = case;
    let mut added: Option<Vec<NewMaterial>> = None;
    for _ in 0..ATTEMPTS {
        let service = app
            .catalogue
            .service(&current.service_code)
            .ok_or_else(|| anyhow::anyhow!("case {} names an unknown service", current.case_no))?;
        let d = decide(
            &app.calendar.current(),
            service,
            &current,
            actor,
            &req,
            today(),
            Utc::now(),
        )?;
        let materials = match &added {
            Some(m) => m.clone(),
            None => {
                let m = correction_materials(app, service, actor, &req, new_materials).await?;
                added = Some(m.clone());
                m
            }
        };
        let fx = effects(service, &d, actor, &req, &materials);
        let stepped = Stepped {
            case_no: d.next.case_no.clone(),
            status: d.to,
            from: d.from,
            action: req.action,
            due_on: d.next.due_on,
        };
        let idem_row = idem
            .as_ref()
            .map(|k| idempotency::record(k, Kind::Changed, &stepped))
            .transpose()?;
        let w = CaseWrite {
            event: &fx.event,
            materials: &materials,
            outbox: &fx.outbox,
            notices: &fx.notices,
            idem: idem_row.as_ref(),
            access: &[],
        };
        match app.store.update_case(&d.next, w).await? {
            WriteOutcome::Done => {
                tracing::info!(case_no = %d.next.case_no, action = req.action.code(), to = d.to.code(), "case step");
                return Ok(stepped);
            }
            WriteOutcome::Replay(prior) => {
                return idempotency::replay_after_race(prior, idem.as_ref());
            }
            WriteOutcome::Conflict => {
                current = app
                    .store
                    .case_by_id(current.id)
                    .await?
                    .ok_or_else(|| Error::case_not_found(&current.case_no))?;
            }
        }
    }
    Err(Error::Stale)
}

/// The materials a step adds: only a correction carries any, and each must be one of the
/// caller's own unattached uploads (or an allowed stand-in).
async fn correction_materials(
    app: &AppState,
    service: &Service,
    actor: &Actor,
    req: &Request,
    inputs: &[MaterialInput],
) -> Result<Vec<NewMaterial>> {
    let resolved = materials::resolve(app, service, inputs, actor.account()).await?;
    if !resolved.issues.is_empty() {
        return Err(Error::Invalid(resolved.issues));
    }
    // A conclusion may carry one result document (决定书, licence …), as an upload.
    let result_document = req.action == Action::Conclude
        && inputs.len() <= 1
        && inputs
            .iter()
            .all(|m| m.material == RESULT_DOCUMENT && !m.substitute);
    if req.action != Action::SupplyCorrection && !result_document && !resolved.provided.is_empty() {
        return Err(Error::Malformed(super::Text::new(
            "只有提交补正时可以附加材料（办结时可附一份结果文书）。",
            "Materials can only be added when supplying a correction (or one result document when concluding).",
        )));
    }
    Ok(resolved.rows)
}

/// The clock's pauses as stored (`[{"from": date, "to": date|null}]`).
fn pauses_of(c: &CaseRow) -> Vec<Pause> {
    pauses_from_json(&c.pauses)
}

/// Pauses from their stored JSON; entries that do not parse are left out.
pub(crate) fn pauses_from_json(pauses: &Value) -> Vec<Pause> {
    pauses
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| {
                    let from = p.get("from")?.as_str()?.parse().ok()?;
                    let to = p
                        .get("to")
                        .and_then(Value::as_str)
                        .and_then(|t| t.parse().ok());
                    Some(Pause { from, to })
                })
                .collect()
        })
        .unwrap_or_default()
}

fn pauses_json(p: &[Pause]) -> Value {
    Value::Array(
        p.iter()
            .map(|p| json!({ "from": p.from.to_string(), "to": p.to.map(|t| t.to_string()) }))
            .collect(),
    )
}

/// Due dates (promised, legal) from the acceptance date and pauses, and whether either
/// is provisional. A year missing from the holiday calendar is counted by the weekday
/// rule and marked provisional (with a warning to load the year), never left blank.
pub(crate) fn due_dates(
    cal: &HolidayCalendar,
    service: &Service,
    accepted: NaiveDate,
    pauses: &[Pause],
    today: NaiveDate,
) -> (Option<NaiveDate>, Option<NaiveDate>, bool) {
    let one = |limit| match deadline::due_date_or_provisional(cal, accepted, limit, pauses, today) {
        Ok(d) => {
            if d.provisional {
                tracing::warn!(service = %service.code, due = %d.on, "provisional due date by the weekday rule: the holiday calendar lacks a year; import it with `onewindow calendar import`");
            }
            Some(d)
        }
        Err(e) => {
            tracing::warn!(service = %service.code, error = %e, "cannot compute a due date");
            None
        }
    };
    let promised = one(service.guide.promised_limit);
    let legal = one(service.guide.legal_limit);
    let provisional =
        promised.is_some_and(|d| d.provisional) || legal.is_some_and(|d| d.provisional);
    (promised.map(|d| d.on), legal.map(|d| d.on), provisional)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usecases::testing::{self, case_row, catalogue};
    use uuid::Uuid;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("date")
    }

    fn clerk(department: &str) -> Actor {
        Actor::Clerk {
            account: Uuid::now_v7(),
            name: "孙".into(),
            hall: "hall".into(),
            departments: vec![department.into()],
        }
    }

    fn system(department: &str) -> Actor {
        Actor::DepartmentSystem {
            token: Uuid::now_v7(),
            department: department.into(),
            name: "业务系统".into(),
        }
    }

    fn conclude(result: ConclusionResult, note: Option<&str>) -> Request {
        Request {
            action: Action::Conclude,
            result: Some(result),
            note: note.map(str::to_owned),
        }
    }

    #[test]
    fn pauses_round_trip_through_json() {
        let p = vec![
            Pause {
                from: date(2026, 3, 2),
                to: Some(date(2026, 3, 5)),
            },
            Pause {
                from: date(2026, 3, 9),
                to: None,
            },
        ];
        let mut c = case_row(testing::SSC);
        c.pauses = pauses_json(&p);
        assert_eq!(pauses_of(&c), p);
    }

    #[test]
    fn the_clock_starts_at_acceptance_and_pauses_for_a_correction() {
        let cat = catalogue();
        let service = cat.service(testing::SSC).expect("service");
        let cal = HolidayCalendar::builtin();
        let c = case_row(testing::SSC);
        let clerk = clerk(&service.department);
        let accepted = decide(
            cal,
            service,
            &c,
            &clerk,
            &Request::new(Action::Accept),
            date(2026, 3, 2),
            Utc::now(),
        )
        .expect("accept");
        assert_eq!(accepted.to, CaseStatus::Accepted);
        assert_eq!(accepted.next.accepted_on, Some(date(2026, 3, 2)));
        let due = accepted.next.due_on.expect("a due date");
        assert!(accepted.next.legal_due_on.expect("legal") >= due);

        let officer = Actor::Officer {
            account: Uuid::now_v7(),
            name: "李".into(),
            department: service.department.clone(),
        };
        let ask = Request {
            action: Action::RequestCorrection,
            result: None,
            note: Some("照片不清晰".into()),
        };
        let paused = decide(
            cal,
            service,
            &accepted.next,
            &officer,
            &ask,
            date(2026, 3, 4),
            Utc::now(),
        )
        .expect("request a correction");
        assert_eq!(paused.to, CaseStatus::CorrectionRequested);
        assert_eq!(
            pauses_of(&paused.next),
            [Pause {
                from: date(2026, 3, 4),
                to: None
            }]
        );

        let applicant = Actor::Applicant {
            account: Uuid::now_v7(),
            name: "王".into(),
            enterprise: None,
            assurance: 3,
        };
        let resumed = decide(
            cal,
            service,
            &paused.next,
            &applicant,
            &Request::new(Action::SupplyCorrection),
            date(2026, 3, 9),
            Utc::now(),
        )
        .expect("supply the correction");
        assert_eq!(
            pauses_of(&resumed.next),
            [Pause {
                from: date(2026, 3, 4),
                to: Some(date(2026, 3, 9))
            }]
        );
        assert!(
            resumed.next.due_on.expect("due") > due,
            "the paused working days move the due date"
        );
    }

    #[test]
    fn a_refused_step_says_what_the_actor_may_do_now() {
        let cat = catalogue();
        let service = cat.service(testing::SSC).expect("service");
        let c = case_row(testing::SSC);
        let applicant = Actor::Applicant {
            account: Uuid::now_v7(),
            name: "王".into(),
            enterprise: None,
            assurance: 3,
        };
        match decide(
            HolidayCalendar::builtin(),
            service,
            &c,
            &applicant,
            &Request::new(Action::Accept),
            today(),
            Utc::now(),
        ) {
            Err(Error::NotAllowed { allowed, .. }) => assert_eq!(allowed, [Action::Withdraw]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_joint_case_concludes_when_its_last_department_has() {
        let cat = catalogue();
        let service = cat.service(testing::NEWBORN).expect("joint service");
        let depts = &service.routing.departments;
        let cal = HolidayCalendar::builtin();
        let mut c = case_row(testing::NEWBORN);
        c.status = "under_review".into();
        c.accepted_on = Some(date(2026, 3, 2));
        let day = date(2026, 3, 3);

        let err = decide(
            cal,
            service,
            &c,
            &clerk(&depts[0]),
            &conclude(ConclusionResult::Approved, None),
            day,
            Utc::now(),
        )
        .expect_err("a clerk concludes no part");
        assert!(
            matches!(err, Error::NotAllowed { .. } | Error::Conflict { .. }),
            "{err:?}"
        );
        let outsider = decide(
            cal,
            service,
            &c,
            &system("not-routed"),
            &conclude(ConclusionResult::Approved, None),
            day,
            Utc::now(),
        );
        assert!(
            matches!(outsider, Err(Error::NotAllowed { .. })),
            "{outsider:?}"
        );

        for (i, d) in depts.iter().enumerate() {
            let result = if i == 1 {
                conclude(ConclusionResult::Rejected, Some("不符合条件"))
            } else {
                conclude(ConclusionResult::Approved, None)
            };
            let step =
                decide(cal, service, &c, &system(d), &result, day, Utc::now()).expect("a part");
            let last = i + 1 == depts.len();
            assert_eq!(step.partial(), !last, "part {i}");
            if last {
                assert_eq!(step.to, CaseStatus::Rejected, "one part was rejected");
                assert_eq!(step.next.result.as_deref(), Some("rejected"));
            } else {
                assert_eq!(step.to, CaseStatus::UnderReview);
                let again = decide(
                    cal,
                    service,
                    &step.next,
                    &system(d),
                    &result,
                    day,
                    Utc::now(),
                );
                assert!(
                    matches!(again, Err(Error::Conflict { .. })),
                    "a part is concluded once"
                );
                let fx = effects(service, &step, &system(d), &result, &[]);
                assert!(fx.outbox.is_empty() && fx.notices.is_empty(), "no news yet");
                assert_eq!(fx.event.attachments[0]["department"], d.as_str());
            }
            c = step.next;
        }
    }
}

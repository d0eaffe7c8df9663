//! The demo's cases (演示办件): at every `onewindow demo` start, the [`plan`] is played
//! through the same use cases a browser or a department system goes through
//! ([`apply::apply_online`], [`intake::intake`], [`step::step`], [`rate::rate`]), so the
//! citizen's "my cases", the clerk's worklist, the officer's desk and the operator's
//! dashboard are never empty, and every case state can be seen.
//!
//! Idempotent: each application and each step carries an idempotency key of its own
//! (scope [`SEED_SCOPE`], key `<plan key>` or `<plan key>/<n>-<action>`), so a second start
//! finds the first start's answers and adds nothing; a start interrupted half-way
//! carries on where it stopped. Materials are the two made-up documents in
//! `reference-data/demo/materials`, uploaded for each application like a browser would
//! (and only when the application is not already there).
//!
//! Who acts: the personas' own accounts (as their login would create them at the demo's
//! identity provider); for departments without a persona officer, a made-up officer
//! account of that department (`issuer` [`SEED_ISSUER`]; nobody can log in as it).
//! The cases waiting for a department are in departments the simulated back-ends
//! ([`crate::demo_departments`]) do not run, or in states they leave alone (suspended,
//! waiting for a correction), so they stay where the plan put them.
//!
//! Not made: overdue cases. The deadline clock starts at the real acceptance date and
//! nothing may back-date it honestly, so no demo case is past its due date at start.

use anyhow::{Context, anyhow, bail};
use chrono::Utc;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::auth::identity::{self, AccountKind, Audience, Identity, Role};
use crate::devidp::personas::{Persona, find_persona};
use crate::domain::case::{Action, CaseStatus, ConclusionResult, Request};
use crate::domain::catalogue::{FileType, Service};
use crate::state::AppState;
use crate::store::{CaseRow, DraftRow, UploadRow};
use crate::usecases::intake::{self, WalkIn};
use crate::usecases::{self, Actor, IdemKey, Lodged, MaterialInput, Stepped, apply, rate, step};

/// The idempotency scope of the seed's applications and steps.
pub const SEED_SCOPE: &str = "onewindow-demo-seed";
/// The issuer of the made-up officer accounts of departments without a persona officer.
pub const SEED_ISSUER: &str = "onewindow-demo-seed";

/// 社会保障卡申领 (人社局, simulated push department).
pub const SSC: &str = "11150700MB15300034-GG-0002";
/// 居住证申领 (公安局).
pub const RESIDENCE: &str = "11150700MB15300021-QR-0001";
/// 无犯罪记录证明开具 (公安局, 即办件).
pub const NO_RECORD: &str = "11150700MB15300021-GG-0001";
/// 公共场所卫生许可证核发 (卫生健康委).
pub const HYGIENE: &str = "11150700MB15300047-XK-0001";
/// 企业变更登记 (市场监管局, simulated pull department).
pub const COMPANY_CHANGE: &str = "11150700MB1530001X-XK-0002";
/// 个体工商户设立登记 (市场监管局, 即办件).
pub const SOLE_TRADER: &str = "11150700MB1530001X-XK-0001";
/// 城乡居民基本医疗保险参保登记 (医保局, 即办件).
pub const MEDICAL: &str = "11150700MB1530007G-GG-0001";

/// How an application arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    /// Online, by the persona with this id.
    Online(&'static str),
    /// At clerk-sun's window, for the walk-in persona with this id (their account is not
    /// involved: the clerk types them in).
    Window(&'static str),
}

/// Who takes a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// The applicant (online cases only).
    Applicant,
    /// clerk-sun, at the window.
    Clerk,
    /// An officer of the case's department (a persona where there is one).
    Officer,
}

/// One step of a planned case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanStep {
    /// Who takes it.
    pub who: Who,
    /// The action.
    pub action: Action,
    /// The result of a conclusion.
    pub result: Option<ConclusionResult>,
    /// The note (the reason where one is needed).
    pub note: Option<&'static str>,
}

const fn by(who: Who, action: Action) -> PlanStep {
    PlanStep {
        who,
        action,
        result: None,
        note: None,
    }
}

const fn with_note(who: Who, action: Action, note: &'static str) -> PlanStep {
    PlanStep {
        who,
        action,
        result: None,
        note: Some(note),
    }
}

const fn conclude(who: Who, result: ConclusionResult, note: Option<&'static str>) -> PlanStep {
    PlanStep {
        who,
        action: Action::Conclude,
        result: Some(result),
        note,
    }
}

/// One demo case: how it arrives, the steps it goes through, the state it ends in, and
/// the applicant's rating.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedCase {
    /// Stable key (part of the idempotency keys: never rename one).
    pub key: &'static str,
    /// The service.
    pub service: &'static str,
    /// How it arrives.
    pub by: By,
    /// The steps after submission.
    pub steps: Vec<PlanStep>,
    /// The state it ends in.
    pub ends_in: CaseStatus,
    /// The applicant's 好差评 (level, comment) once concluded.
    pub rating: Option<(i16, Option<&'static str>)>,
}

/// A saved, unsubmitted application of a persona's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedDraft {
    /// Stable key (the draft's id derives from it).
    pub key: &'static str,
    /// The persona.
    pub persona: &'static str,
    /// The service.
    pub service: &'static str,
}

/// The demo's cases: every state, several services and departments, the personas
/// citizen-wang, citizen-li and enterprise-chen online, walk-ins taken in by clerk-sun.
pub fn plan() -> Vec<PlannedCase> {
    use Action as A;
    use ConclusionResult as R;
    use Who::{Applicant, Clerk, Officer};
    let case = |key, service, by: By, steps: Vec<PlanStep>, ends_in| PlannedCase {
        key,
        service,
        by,
        steps,
        ends_in,
        rating: None,
    };
    vec![
        // 公安局 (no back-end of its own): waiting for the window to accept.
        case(
            "wang-residence-permit",
            RESIDENCE,
            By::Online("citizen-wang"),
            vec![],
            CaseStatus::Submitted,
        ),
        case(
            "zhao-residence-permit-window",
            RESIDENCE,
            By::Window("citizen-zhao"),
            vec![],
            CaseStatus::Submitted,
        ),
        case(
            "li-residence-permit",
            RESIDENCE,
            By::Online("citizen-li"),
            vec![by(Clerk, A::Accept)],
            CaseStatus::Accepted,
        ),
        // 人社局 (simulated): the window asks for a better photo; the department waits.
        case(
            "wang-social-security-card",
            SSC,
            By::Online("citizen-wang"),
            vec![with_note(
                Clerk,
                A::RequestCorrection,
                "证件照背景不是白色，请重新上传白底彩色证件照（358×441像素，JPG）。",
            )],
            CaseStatus::CorrectionRequested,
        ),
        // 人社局 (simulated; officer-ma): a walk-in's card suspended while the household
        // registration is checked, for officer-ma to resume.
        case(
            "zhao-social-security-card-window",
            SSC,
            By::Window("citizen-zhao"),
            vec![
                by(Officer, A::Accept),
                by(Officer, A::StartReview),
                with_note(
                    Officer,
                    A::Suspend,
                    "等待公安机关核验户籍信息，核验期间暂停计时。",
                ),
            ],
            CaseStatus::Suspended,
        ),
        // 卫生健康委: under review by the department.
        case(
            "chen-hygiene-licence",
            HYGIENE,
            By::Online("enterprise-chen"),
            vec![by(Officer, A::Accept), by(Officer, A::StartReview)],
            CaseStatus::UnderReview,
        ),
        // 市场监管局 (simulated; officer-zhou): suspended for an inspection.
        case(
            "chen-company-change-domicile",
            COMPANY_CHANGE,
            By::Online("enterprise-chen"),
            vec![
                by(Officer, A::Accept),
                by(Officer, A::StartReview),
                with_note(
                    Officer,
                    A::Suspend,
                    "需到企业新住所现场核查，核查期间暂停计时。",
                ),
            ],
            CaseStatus::Suspended,
        ),
        // 人社局 (officer-ma): approved and rated well.
        PlannedCase {
            rating: Some((5, Some("办理很快，社保卡邮寄到家，很方便。"))),
            ..case(
                "li-social-security-card",
                SSC,
                By::Online("citizen-li"),
                vec![
                    by(Officer, A::Accept),
                    by(Officer, A::StartReview),
                    conclude(Officer, R::Approved, None),
                ],
                CaseStatus::Approved,
            )
        },
        // 市场监管局 (officer-zhou): an enterprise's change approved, rated 4.
        PlannedCase {
            rating: Some((4, None)),
            ..case(
                "chen-company-change-scope",
                COMPANY_CHANGE,
                By::Online("enterprise-chen"),
                vec![
                    by(Officer, A::Accept),
                    by(Officer, A::StartReview),
                    conclude(Officer, R::Approved, None),
                ],
                CaseStatus::Approved,
            )
        },
        // 公安局 即办件 at the window: accepted and concluded on the spot.
        case(
            "li-no-criminal-record-window",
            NO_RECORD,
            By::Window("citizen-li"),
            vec![
                by(Clerk, A::Accept),
                conclude(Clerk, R::Approved, Some("当场出具电子证明。")),
            ],
            CaseStatus::Approved,
        ),
        // 医保局: refused, and rated low (a rating to follow up).
        PlannedCase {
            rating: Some((
                2,
                Some("不予办理的原因事先没有说明，白准备了材料。希望办事指南写清楚。"),
            )),
            ..case(
                "wang-medical-insurance",
                MEDICAL,
                By::Online("citizen-wang"),
                vec![
                    by(Officer, A::Accept),
                    by(Officer, A::StartReview),
                    conclude(
                        Officer,
                        R::Rejected,
                        Some(
                            "经核查，申请人已在本市参加职工基本医疗保险，不能重复参加城乡居民医保。",
                        ),
                    ),
                ],
                CaseStatus::Rejected,
            )
        },
        // 市场监管局 at the window: not accepted.
        case(
            "zhao-sole-trader-window",
            SOLE_TRADER,
            By::Window("citizen-zhao"),
            vec![with_note(
                Clerk,
                A::NotAccept,
                "经营场所为住宅，未提交利害关系人同意证明，不符合受理条件。",
            )],
            CaseStatus::NotAccepted,
        ),
        // 医保局: withdrawn by the applicant.
        case(
            "li-medical-insurance",
            MEDICAL,
            By::Online("citizen-li"),
            vec![with_note(
                Applicant,
                A::Withdraw,
                "已随单位参加职工医保，无需再办理。",
            )],
            CaseStatus::Withdrawn,
        ),
    ]
}

/// The demo's drafts.
pub fn planned_drafts() -> Vec<PlannedDraft> {
    vec![
        PlannedDraft {
            key: "wang-medical-insurance-draft",
            persona: "citizen-wang",
            service: MEDICAL,
        },
        PlannedDraft {
            key: "chen-company-change-draft",
            persona: "enterprise-chen",
            service: COMPANY_CHANGE,
        },
    ]
}

/// What the seed found or made.
#[derive(Debug, Clone, Default)]
pub struct SeedReport {
    /// (plan key, case number, status now).
    pub cases: Vec<(String, String, String)>,
    /// Applications lodged by this run (0 on a second start).
    pub lodged: usize,
    /// Steps taken by this run.
    pub stepped: usize,
    /// Drafts saved by this run.
    pub drafts: usize,
    /// Planned cases or drafts that could not be made: (plan key, why).
    pub failed: Vec<(String, String)>,
}

impl SeedReport {
    /// One line for the log.
    pub fn summary(&self) -> String {
        format!(
            "{} demo cases ({} new, {} new steps), {} new drafts, {} failed",
            self.cases.len(),
            self.lodged,
            self.stepped,
            self.drafts,
            self.failed.len()
        )
    }
}

/// Plays the [`plan`] and the [`planned_drafts`] against `app`; `issuer` is the demo
/// identity provider's issuer (the personas' accounts are keyed by it, as at login).
/// A case or draft that cannot be made (a changed service definition, say) is listed in
/// [`SeedReport::failed`] and the others are made all the same.
pub async fn seed(app: &AppState, issuer: &str) -> SeedReport {
    let mut report = SeedReport::default();
    for planned in plan() {
        match seed_case(app, issuer, &planned, &mut report).await {
            Ok((case_no, status)) => {
                report
                    .cases
                    .push((planned.key.to_owned(), case_no, status.code().to_owned()))
            }
            Err(e) => report
                .failed
                .push((planned.key.to_owned(), format!("{e:#}"))),
        }
    }
    for d in planned_drafts() {
        match seed_draft(app, issuer, &d).await {
            Ok(true) => report.drafts += 1,
            Ok(false) => {}
            Err(e) => report.failed.push((d.key.to_owned(), format!("{e:#}"))),
        }
    }
    if let Err(e) = crate::supervision::systems::seed_demo(app, Utc::now()).await {
        report
            .failed
            .push(("supervision-systems".to_owned(), format!("{e:#}")));
    }
    if let Err(e) = crate::sharing::grants::seed_demo(app, Utc::now()).await {
        report
            .failed
            .push(("sharing-grants".to_owned(), format!("{e:#}")));
    }
    // after the registry's systems are seeded: filings name them
    if let Err(e) = crate::supervision::filings::seed_demo(app, issuer).await {
        report
            .failed
            .push(("supervision-filings".to_owned(), format!("{e:#}")));
    }
    // after the cases: the case statistics count them
    if let Err(e) = crate::open::demo::seed_demo(app, Utc::now()).await {
        report
            .failed
            .push(("open-data".to_owned(), format!("{e:#}")));
    }
    if let Err(e) = crate::usecases::catalogue_mgmt::seed_demo(app, Utc::now()).await {
        report
            .failed
            .push(("catalogue-edit".to_owned(), format!("{e:#}")));
    }
    report
}

async fn seed_case(
    app: &AppState,
    issuer: &str,
    p: &PlannedCase,
    report: &mut SeedReport,
) -> anyhow::Result<(String, CaseStatus)> {
    let service = app
        .catalogue
        .service(p.service)
        .ok_or_else(|| anyhow!("no service {} in the catalogue", p.service))?;
    let clerk = persona_actor(app, issuer, "clerk-sun").await?;
    let (lodger, applicant) = match p.by {
        By::Online(id) => {
            let a = persona_actor(app, issuer, id).await?;
            (a.clone(), Some(a))
        }
        By::Window(_) => (clerk.clone(), None),
    };
    let values = form_values(p.service, applicant_persona(p.by)?)?;
    let request = json!({ "service": p.service, "values": values });
    let key = IdemKey::new(SEED_SCOPE, p.key, &request);
    let lodged: Lodged = match app.store.idempotent(SEED_SCOPE, p.key).await? {
        Some(prior) => serde_json::from_value(prior.response)
            .context("the remembered demo application does not read back")?,
        None => {
            let account = lodger
                .account()
                .ok_or_else(|| anyhow!("the lodging actor has no account"))?;
            let materials = upload_materials(app, service, account).await?;
            let lodged = match p.by {
                By::Online(_) => {
                    apply::apply_online(app, &lodger, service, &values, &materials, Some(key)).await
                }
                By::Window(id) => {
                    let walk_in = walk_in_of(find(id)?);
                    intake::intake(
                        app,
                        &lodger,
                        service,
                        &walk_in,
                        &values,
                        &materials,
                        Some(key),
                    )
                    .await
                }
            }
            .map_err(|e| anyhow!("lodging failed: {e:?}"))?;
            report.lodged += 1;
            lodged
        }
    };
    let mut status = lodged.status;
    for (n, s) in p.steps.iter().enumerate() {
        let actor = match s.who {
            Who::Applicant => applicant
                .clone()
                .ok_or_else(|| anyhow!("a window case has no applicant account to act"))?,
            Who::Clerk => clerk.clone(),
            Who::Officer => officer_actor(app, issuer, &service.department).await?,
        };
        let mut req = Request::new(s.action);
        if let Some(r) = s.result {
            req = req.with_result(r);
        }
        if let Some(note) = s.note {
            req = req.with_note(note);
        }
        let step_key = format!("{}/{n}-{}", p.key, s.action.code());
        let idem = IdemKey::new(
            SEED_SCOPE,
            step_key.clone(),
            &json!({ "action": s.action.code(), "result": s.result.map(|r| r.code()), "note": s.note }),
        );
        let done: Stepped = match app.store.idempotent(SEED_SCOPE, &step_key).await? {
            Some(prior) => serde_json::from_value(prior.response)
                .context("the remembered demo step does not read back")?,
            None => {
                let current = case_row(app, &lodged.case_no).await?;
                let done = step::step(app, current, &actor, req, &[], Some(idem))
                    .await
                    .map_err(|e| anyhow!("step {step_key} failed: {e:?}"))?;
                report.stepped += 1;
                done
            }
        };
        status = done.status;
    }
    if let Some((level, comment)) = p.rating {
        let c = case_row(app, &lodged.case_no).await?;
        if c.rating.is_none() {
            rate::rate(app, &c, level, comment)
                .await
                .map_err(|e| anyhow!("rating failed: {e:?}"))?;
        }
    }
    // The case may have moved on since (a person using the demo): report it as it is.
    let now = case_row(app, &lodged.case_no).await?;
    let status = CaseStatus::from_code(&now.status).unwrap_or(status);
    Ok((lodged.case_no, status))
}

async fn case_row(app: &AppState, case_no: &str) -> anyhow::Result<CaseRow> {
    app.store
        .case_by_no(case_no)
        .await?
        .ok_or_else(|| anyhow!("case {case_no} is gone"))
}

/// Saves a draft unless the persona already has one for the service. Its id derives
/// from the plan key, so a repeat overwrites rather than adds.
async fn seed_draft(app: &AppState, issuer: &str, d: &PlannedDraft) -> anyhow::Result<bool> {
    let actor = persona_actor(app, issuer, d.persona).await?;
    let owner = actor
        .account()
        .ok_or_else(|| anyhow!("no account for {}", d.persona))?;
    if app
        .store
        .drafts(owner)
        .await?
        .iter()
        .any(|x| x.service_code == d.service)
    {
        return Ok(false);
    }
    let mut values = form_values(d.service, find(d.persona)?)?;
    // Half filled: the first few answers only.
    let keep: Vec<String> = values.keys().take(4).cloned().collect();
    values.retain(|k, _| keep.contains(k));
    let now = Utc::now();
    let row = DraftRow {
        id: derived_id(d.key),
        account_id: owner,
        service_code: d.service.to_owned(),
        form: Value::Object(values),
        created_at: now,
        updated_at: now,
        expires_at: now + chrono::Duration::seconds(app.settings.cases.draft_ttl_secs as i64),
    };
    Ok(app.store.save_draft(&row).await?)
}

/// A stable id for a planned row (UUID version 8, from a hash of the key).
fn derived_id(key: &str) -> Uuid {
    let hash = Sha256::digest(format!("{SEED_SCOPE}/{key}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

fn find(id: &str) -> anyhow::Result<&'static Persona> {
    find_persona(id).ok_or_else(|| anyhow!("no persona {id}"))
}

fn applicant_persona(by: By) -> anyhow::Result<&'static Persona> {
    match by {
        By::Online(id) | By::Window(id) => find(id),
    }
}

/// The persona's account, upserted exactly as their login at `issuer` would, and the
/// actor their session would make.
pub async fn persona_actor(app: &AppState, issuer: &str, id: &str) -> anyhow::Result<Actor> {
    let p = find(id)?;
    let audience = if p.kind == "staff" {
        Audience::Staff
    } else {
        Audience::Public
    };
    let mut claims = p.claims();
    claims.insert("sub".into(), Value::from(p.id));
    let who = identity::identity_from_claims(issuer, audience, &claims, &app.claim_names)
        .map_err(|e| anyhow!("persona {id}: {e}"))?;
    let account = app.store.upsert_account(&who, Utc::now()).await?;
    actor_of(&who, account)
}

fn actor_of(who: &Identity, account: Uuid) -> anyhow::Result<Actor> {
    let name = who.name.clone();
    for role in &who.roles {
        match role {
            Role::Clerk { hall, departments } => {
                return Ok(Actor::Clerk {
                    account,
                    name,
                    hall: hall.clone(),
                    departments: departments.clone(),
                });
            }
            Role::DepartmentOfficer { department } => {
                return Ok(Actor::Officer {
                    account,
                    name,
                    department: department.clone(),
                });
            }
            _ => {}
        }
    }
    if who.kind == AccountKind::Staff {
        bail!("the demo seed does not act as an operator");
    }
    Ok(Actor::Applicant {
        account,
        name,
        enterprise: who.enterprise.as_ref().map(|e| e.uscc.clone()),
        assurance: who.assurance,
    })
}

/// An officer of `department`: the persona officer where there is one, or else the
/// department's made-up demo officer (an account nobody can log in as).
async fn officer_actor(app: &AppState, issuer: &str, department: &str) -> anyhow::Result<Actor> {
    if let Some(p) = crate::devidp::personas::personas()
        .iter()
        .find(|p| p.department == Some(department))
    {
        return persona_actor(app, issuer, p.id).await;
    }
    let short = app
        .catalogue
        .department(department)
        .map(|d| d.short_name.clone())
        .unwrap_or_else(|| department.to_owned());
    let who = Identity {
        issuer: SEED_ISSUER.to_owned(),
        subject: format!("officer-{department}"),
        kind: AccountKind::Staff,
        name: format!("{short}审核员（演示）"),
        id_number: None,
        phone: None,
        email: None,
        assurance: 2,
        enterprise: None,
        roles: vec![Role::DepartmentOfficer {
            department: department.to_owned(),
        }],
    };
    let account = app.store.upsert_account(&who, Utc::now()).await?;
    actor_of(&who, account)
}

fn walk_in_of(p: &Persona) -> WalkIn {
    WalkIn {
        kind: "person".into(),
        name: p.name.to_owned(),
        id_number: p.id_number.map(str::to_owned),
        uscc: None,
        phone: p.phone_number.map(str::to_owned),
    }
}

/// The made-up documents, by type.
const PHOTO_JPG: &[u8] = include_bytes!("../reference-data/demo/materials/photo.jpg");
const SCAN_PDF: &[u8] = include_bytes!("../reference-data/demo/materials/scan.pdf");

/// Uploads one made-up document for every required material, as `owner` (the applicant
/// online, the clerk at the window), the way the upload endpoint stores them.
async fn upload_materials(
    app: &AppState,
    service: &Service,
    owner: Uuid,
) -> anyhow::Result<Vec<MaterialInput>> {
    let mut inputs = Vec::new();
    for m in service.materials.iter().filter(|m| m.required) {
        let (bytes, ext) = if m.file_types.contains(&FileType::Pdf) {
            (SCAN_PDF, "pdf")
        } else if m.file_types.contains(&FileType::Jpg) {
            (PHOTO_JPG, "jpg")
        } else {
            bail!("material {} takes neither PDF nor JPG", m.id);
        };
        let id = Uuid::now_v7();
        let key = id.to_string();
        let temp = app.files.temp_dir().join(format!("{key}.part"));
        tokio::fs::write(&temp, bytes).await?;
        app.files.put_file(&key, &temp).await?;
        app.store
            .insert_upload(&UploadRow {
                id,
                owner,
                file_name: format!("{}.{ext}", m.id),
                file_type: ext.to_owned(),
                size: bytes.len() as i64,
                sha256: hex::encode(Sha256::digest(bytes)),
                storage_key: key,
                created_at: Utc::now(),
                case_id: None,
            })
            .await?;
        inputs.push(MaterialInput {
            material: m.id.clone(),
            upload_id: Some(id),
            substitute: false,
        });
    }
    Ok(inputs)
}

/// The form answers of a demo application for `service` by (or for) persona `p`.
pub fn form_values(service: &str, p: &Persona) -> anyhow::Result<Map<String, Value>> {
    let name = p.name;
    let id = p.id_number.unwrap_or_default();
    let phone = p.phone_number.unwrap_or("13800000009");
    let today = usecases::today();
    let long_ago = (today - chrono::Duration::days(400)).to_string();
    let recently = (today - chrono::Duration::days(20)).to_string();
    let company = p.enterprise_name.unwrap_or("呼伦贝尔草原乳业有限公司");
    let uscc = p.uscc.unwrap_or("91150700MA0N2C3D40");
    let v = match service {
        RESIDENCE => json!({
            "applicant_name": name,
            "applicant_id_number": id,
            "applicant_phone": phone,
            "household_address": "内蒙古自治区兴安盟乌兰浩特市兴安南大街8号",
            "residence_address": "呼伦贝尔市海拉尔区胜利大街1号3单元502室",
            "residence_since": long_ago,
            "basis": "employment",
            "employer": "呼伦贝尔市海拉尔区第三中学",
            "pickup": "station",
        }),
        NO_RECORD => json!({
            "applicant_name": name,
            "applicant_id_number": id,
            "applicant_phone": phone,
            "purpose": "employment",
            "receiving_organisation": "呼伦贝尔市第一人民医院",
            "delivery": "electronic",
        }),
        SSC => json!({
            "applicant_name": name,
            "applicant_id_number": id,
            "gender": if id.chars().nth(16).and_then(|c| c.to_digit(10)).is_some_and(|d| d % 2 == 1) { "1" } else { "2" },
            "phone": phone,
            "application_type": "first",
            "bank": "icbc",
            "delivery": "post",
            "mailing_address": "呼伦贝尔市海拉尔区胜利大街1号3单元502室",
        }),
        MEDICAL => json!({
            "insured_name": name,
            "insured_id_number": id,
            "gender": if id.chars().nth(16).and_then(|c| c.to_digit(10)).is_some_and(|d| d % 2 == 1) { "1" } else { "2" },
            "phone": phone,
            "enrolment_basis": "hukou",
            "residence_address": "呼伦贝尔市海拉尔区胜利大街1号3单元502室",
            "person_category": "adult",
        }),
        SOLE_TRADER => json!({
            "operator_name": name,
            "operator_id_number": id,
            "operator_phone": phone,
            "business_name": "海拉尔区老赵家常菜馆",
            "organisation_form": "individual",
            "business_scope": "餐饮服务（不含生食）",
            "premises_address": "呼伦贝尔市海拉尔区河东街道团结小区5号楼1单元101室",
            "employees": 3,
        }),
        HYGIENE => json!({
            "operator_name": company,
            "operator_uscc": uscc,
            "legal_rep": name,
            "venue_name": "草原乳业职工浴室",
            "venue_address": "呼伦贝尔市海拉尔区工业园区乳业路6号",
            "venue_types": ["bath"],
            "floor_area": 320,
            "staff_count": 6,
            "health_cert_count": 6,
            "hygiene_manager": "刘海燕",
            "contact_phone": phone,
        }),
        COMPANY_CHANGE => json!({
            "enterprise_uscc": uscc,
            "enterprise_name": company,
            "legal_rep": name,
            "change_items": ["domicile"],
            "new_domicile": "呼伦贝尔市海拉尔区工业园区乳业路6号",
            "resolution_date": recently,
            "contact_name": name,
            "contact_phone": phone,
        }),
        other => bail!("the demo has no answers for service {other}"),
    };
    match v {
        Value::Object(m) => Ok(m),
        _ => unreachable!("a JSON object literal"),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::domain::case::{self, CaseFacts};
    use crate::domain::catalogue::{ApplicantType, CaseKind, Catalogue};
    use crate::domain::form;

    fn catalogue() -> Catalogue {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("service-definitions");
        crate::domain::catalogue::load_dir(&dir).expect("the shipped definitions load")
    }

    #[test]
    fn the_plan_holds_every_state_but_draft_and_keys_are_unique() {
        let states: BTreeSet<&str> = plan().iter().map(|p| p.ends_in.code()).collect();
        for s in [
            CaseStatus::Submitted,
            CaseStatus::Accepted,
            CaseStatus::CorrectionRequested,
            CaseStatus::UnderReview,
            CaseStatus::Suspended,
            CaseStatus::Approved,
            CaseStatus::Rejected,
            CaseStatus::NotAccepted,
            CaseStatus::Withdrawn,
        ] {
            assert!(states.contains(s.code()), "no demo case ends in {s:?}");
        }
        assert!(
            !planned_drafts().is_empty(),
            "drafts stand for the draft state"
        );
        let mut keys: Vec<&str> = plan().iter().map(|p| p.key).collect();
        keys.extend(planned_drafts().iter().map(|d| d.key));
        let n = keys.len();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), n, "plan keys are unique");
    }

    #[test]
    fn the_plan_covers_the_personas_several_departments_and_a_low_rating() {
        let cat = catalogue();
        let plan = plan();
        let departments: BTreeSet<&str> = plan
            .iter()
            .map(|p| cat.service(p.service).expect("service").department.as_str())
            .collect();
        assert!(departments.len() >= 4, "{departments:?}");
        for persona in ["citizen-wang", "citizen-li", "enterprise-chen"] {
            assert!(
                plan.iter().any(|p| p.by == By::Online(persona)),
                "{persona} has no case"
            );
        }
        assert!(plan.iter().any(|p| matches!(p.by, By::Window(_))));
        assert!(
            plan.iter()
                .any(|p| p.rating.is_some_and(|(l, c)| l < 3 && c.is_some()))
        );
        for p in &plan {
            if let Some((level, comment)) = p.rating {
                assert!(rate::check_rating(level, comment).is_ok(), "{}", p.key);
                assert!(
                    matches!(p.ends_in, CaseStatus::Approved | CaseStatus::Rejected),
                    "{} is rated before its conclusion",
                    p.key
                );
            }
        }
    }

    /// Every planned path is one the state machine allows, for the actor the seed uses,
    /// and ends in the planned state.
    #[test]
    fn every_planned_path_is_allowed_and_ends_where_planned() {
        let cat = catalogue();
        for p in plan() {
            let s = cat.service(p.service).expect("service");
            let mut status = CaseStatus::Submitted;
            let mut was_accepted = false;
            for st in &p.steps {
                let role = match st.who {
                    Who::Applicant => case::Actor::Applicant,
                    Who::Clerk => case::Actor::Clerk,
                    Who::Officer => case::Actor::DepartmentOfficer,
                };
                if st.who == Who::Applicant {
                    assert!(matches!(p.by, By::Online(_)), "{}", p.key);
                }
                let facts = CaseFacts {
                    accept_at_window: s.accept_at_window,
                    immediate: s.case_kind == CaseKind::Immediate,
                    was_accepted,
                };
                let mut req = Request::new(st.action);
                req.result = st.result;
                req.note = st.note.map(str::to_owned);
                status = case::transition(status, &req, role, facts)
                    .unwrap_or_else(|e| panic!("{}: {e:?}", p.key));
                was_accepted |= st.action == Action::Accept;
            }
            assert_eq!(status, p.ends_in, "{}", p.key);
        }
    }

    /// The seed's answers pass the services' own form rules, and the applicants fit.
    #[test]
    fn every_planned_application_is_valid() {
        let cat = catalogue();
        let plan = plan();
        let drafts = planned_drafts();
        let services = plan
            .iter()
            .map(|p| (p.service, p.by))
            .chain(drafts.iter().map(|d| (d.service, By::Online(d.persona))));
        for (code, by) in services {
            let s = cat.service(code).expect("service");
            let p = applicant_persona(by).expect("persona");
            let values = form_values(code, p).expect("values");
            form::validate_form(s, &values, usecases::today())
                .unwrap_or_else(|e| panic!("{code}: {e:?}"));
            let wanted = if p.uscc.is_some() {
                ApplicantType::Enterprise
            } else {
                ApplicantType::Person
            };
            assert!(s.applicant_types.contains(&wanted), "{code}");
            if let By::Online(_) = by {
                let level = p.acr.rsplit(':').next().and_then(|l| l.parse::<u8>().ok());
                assert!(
                    level >= Some(s.min_assurance),
                    "{code} needs a higher level"
                );
            }
            for m in s.materials.iter().filter(|m| m.required) {
                assert!(
                    m.file_types.contains(&FileType::Pdf) || m.file_types.contains(&FileType::Jpg),
                    "{code}: {}",
                    m.id
                );
            }
        }
    }

    /// Window cases are for services clerk-sun's hall takes in.
    #[test]
    fn window_cases_are_for_the_clerks_hall() {
        let cat = catalogue();
        let clerk = find("clerk-sun").expect("clerk");
        for p in plan().iter().filter(|p| matches!(p.by, By::Window(_))) {
            let s = cat.service(p.service).expect("service");
            let hall: Vec<String> = clerk
                .hall_departments
                .iter()
                .map(|d| (*d).to_owned())
                .collect();
            intake::check_hall(s, &hall).unwrap_or_else(|e| panic!("{}: {e:?}", p.key));
        }
    }

    /// Cases waiting for a department are not in a simulated department's reach: the
    /// simulations accept, review and conclude what is submitted, accepted or under
    /// review, and would move them on.
    #[test]
    fn waiting_cases_are_out_of_the_simulations_reach() {
        let cat = catalogue();
        let simulated = [
            crate::demo_departments::PUSH_DEPARTMENT,
            crate::demo_departments::PULL_DEPARTMENT,
        ];
        for p in plan() {
            let s = cat.service(p.service).expect("service");
            if matches!(
                p.ends_in,
                CaseStatus::Submitted | CaseStatus::Accepted | CaseStatus::UnderReview
            ) {
                assert!(
                    !simulated.contains(&s.department.as_str())
                        && !s
                            .routing
                            .departments
                            .iter()
                            .any(|d| simulated.contains(&d.as_str())),
                    "{} would be moved on by a simulated department",
                    p.key
                );
            }
        }
    }

    #[test]
    fn derived_ids_are_stable_and_distinct() {
        assert_eq!(derived_id("a"), derived_id("a"));
        assert_ne!(derived_id("a"), derived_id("b"));
    }
}

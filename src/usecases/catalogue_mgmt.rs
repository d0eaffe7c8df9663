//! Catalogue management (政务信息资源目录): the providing department edits its
//! resources (each change a new, pending version with its author and time) or proposes a
//! new one; the operator publishes a version, which becomes the live one, or returns it
//! with a comment. Earlier versions stay readable.
//!
//! The live catalogue is `Catalogue::resources()`, held in the shared state and replaced
//! as a whole: right after a publication on this instance ([`publish`] calls [`reload`]),
//! and on every other instance by [`refresh`], which the housekeeper runs every
//! `catalogue_refresh_secs` and which re-reads the published versions only when a cheap
//! fingerprint of them (count and sum of the live version numbers) has changed.
//!
//! At start, [`import_and_load`] imports every resource of `data-catalogue.toml` whose
//! code the database does not hold yet as version 1, published, by `import` (a restart
//! imports nothing twice), then loads the published versions.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::error::{Error, Text};
use crate::domain::catalogue::{
    Access, Catalogue, DataItem, OpenAttribute, Resource, ShareType, Subject, UpdateCycle,
};
use crate::domain::catalogue_edit::{self, Issue};
use crate::state::AppState;
use crate::store::{AddedVersion, ResourceVersion, Store, StoreError};

/// What a department writes: every editable field of a resource. The code, provider,
/// access, cache time and grants are not edited here (they come from the version it
/// replaces, or defaults for a proposal).
#[derive(Debug, Clone)]
pub struct Draft {
    /// Chinese name.
    pub name: String,
    /// English name.
    pub name_en: String,
    /// Sharing class.
    pub share_type: ShareType,
    /// Conditions of sharing (Chinese).
    pub conditions: Option<String>,
    /// Conditions of sharing (English).
    pub conditions_en: Option<String>,
    /// Open attribute.
    pub open: OpenAttribute,
    /// Update cycle.
    pub update_cycle: UpdateCycle,
    /// Whose data it holds.
    pub subject: Subject,
    /// The data items.
    pub items: Vec<DataItem>,
    /// The information system that holds it.
    pub system_id: Option<Uuid>,
    /// The author's note on the change.
    pub note: String,
}

/// Who writes: the account id and name.
#[derive(Debug, Clone, Copy)]
pub struct Author<'a> {
    /// Account id.
    pub id: &'a str,
    /// Name shown in the history.
    pub name: &'a str,
}

fn blank_to_none(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

fn apply(base: Resource, d: &Draft) -> Resource {
    Resource {
        name: d.name.trim().to_owned(),
        name_en: d.name_en.trim().to_owned(),
        share_type: d.share_type,
        conditions: blank_to_none(d.conditions.clone()),
        conditions_en: blank_to_none(d.conditions_en.clone()),
        open: d.open,
        update_cycle: d.update_cycle,
        subject: d.subject,
        items: d
            .items
            .iter()
            .map(|i| DataItem {
                id: i.id.trim().to_owned(),
                name: i.name.trim().to_owned(),
                name_en: i.name_en.trim().to_owned(),
                ..i.clone()
            })
            .collect(),
        ..base
    }
}

fn code_taken(code: &str) -> Issue {
    Issue {
        field: "code".into(),
        zh: format!("资源代码 {code} 已被使用。"),
        en: format!("The resource code {code} is taken."),
    }
}

fn not_provider() -> Error {
    Error::not_allowed(
        "只有提供部门可以修改本资源。",
        "Only the providing department may change this resource.",
    )
}

fn no_resource(code: &str) -> Error {
    Error::NotFound(Text::new(
        format!("目录中没有资源 {code}。"),
        format!("The catalogue has no resource {code}."),
    ))
}

/// The newest version of a resource and its live one, checked to be the department's
/// own (`None` department: the operator, who sees all).
pub async fn versions_of(
    app: &AppState,
    department: Option<&str>,
    code: &str,
) -> Result<Vec<ResourceVersion>, Error> {
    let versions = app.store.resource_versions(code).await?;
    let Some(latest) = versions.first() else {
        return Err(no_resource(code));
    };
    if department.is_some_and(|d| d != latest.body.provider) {
        return Err(not_provider());
    }
    Ok(versions)
}

/// The live version among `versions` (newest first), if any is published.
pub async fn published_of(app: &AppState, code: &str) -> Result<Option<ResourceVersion>, Error> {
    let entries = app.store.catalogue_entries(None).await?;
    let Some(v) = entries
        .iter()
        .find(|e| e.code == code)
        .and_then(|e| e.published_version)
    else {
        return Ok(None);
    };
    Ok(app.store.resource_version(code, v).await?)
}

async fn check_system(
    app: &AppState,
    department: &str,
    system: Option<Uuid>,
) -> Result<Vec<Issue>, Error> {
    let Some(id) = system else {
        return Ok(vec![]);
    };
    match app.store.system(id).await? {
        Some(s) if s.department == department => Ok(vec![]),
        _ => Ok(vec![Issue {
            field: "system_id".into(),
            zh: "请选择本部门登记的信息系统。".into(),
            en: "Choose an information system your department registered.".into(),
        }]),
    }
}

/// A department's edit of one of its resources: a new pending version.
pub async fn edit(
    app: &AppState,
    department: &str,
    author: Author<'_>,
    code: &str,
    draft: &Draft,
    now: DateTime<Utc>,
) -> Result<ResourceVersion, Error> {
    let versions = versions_of(app, Some(department), code).await?;
    let published = published_of(app, code).await?;
    let base = versions[0].body.clone();
    let new = apply(base, draft);
    let old = published.as_ref().map(|p| &p.body);
    let mut issues = catalogue_edit::validate_edit(app.catalogue.services(), old, &new);
    issues.extend(check_system(app, department, draft.system_id).await?);
    if !issues.is_empty() {
        return Err(Error::Invalid(issues));
    }
    write(app, new, draft, author, false, now).await
}

/// A department's proposal of a new resource (pending until the operator publishes it).
pub async fn propose(
    app: &AppState,
    department: &str,
    author: Author<'_>,
    code: &str,
    draft: &Draft,
    now: DateTime<Utc>,
) -> Result<ResourceVersion, Error> {
    let base = Resource {
        code: code.trim().to_owned(),
        name: String::new(),
        name_en: String::new(),
        provider: department.to_owned(),
        share_type: ShareType::NotShared,
        conditions: None,
        conditions_en: None,
        update_cycle: UpdateCycle::Monthly,
        open: OpenAttribute::NotOpen,
        subject: Subject::Person,
        access: Access::BaseLibrary,
        cache_ttl_secs: 300,
        grants: vec![],
        items: vec![],
    };
    if !app
        .store
        .resource_versions(base.code.as_str())
        .await?
        .is_empty()
    {
        return Err(Error::Invalid(vec![code_taken(&base.code)]));
    }
    let new = apply(base, draft);
    let mut issues = catalogue_edit::validate_edit(app.catalogue.services(), None, &new);
    issues.extend(check_system(app, department, draft.system_id).await?);
    if !issues.is_empty() {
        return Err(Error::Invalid(issues));
    }
    write(app, new, draft, author, true, now).await
}

async fn write(
    app: &AppState,
    body: Resource,
    draft: &Draft,
    author: Author<'_>,
    new_resource: bool,
    now: DateTime<Utc>,
) -> Result<ResourceVersion, Error> {
    let mut v = ResourceVersion {
        code: body.code.clone(),
        version: 0,
        body,
        system_id: draft.system_id,
        status: "pending".into(),
        note: draft.note.trim().to_owned(),
        author: author.id.to_owned(),
        author_name: author.name.to_owned(),
        created_at: now,
        decided_by: None,
        decided_name: None,
        decided_at: None,
        comment: None,
    };
    match app.store.add_resource_version(&v, new_resource).await {
        Ok(AddedVersion::Added(n)) => {
            v.version = n;
            tracing::info!(resource = %v.code, version = n, "catalogue version written");
            Ok(v)
        }
        Ok(AddedVersion::CodeTaken) => Err(Error::Invalid(vec![code_taken(&v.code)])),
        Ok(AddedVersion::NoResource) => Err(no_resource(&v.code)),
        Err(e) if crate::store::is_unique_violation(&e) => Err(Error::conflict(
            "本资源刚被他人修改，请刷新后再提交。",
            "Someone changed this resource just now; reload and send it again.",
        )),
        Err(e) => Err(e.into()),
    }
}

fn pending(v: Option<ResourceVersion>, code: &str, version: i64) -> Result<ResourceVersion, Error> {
    let Some(v) = v else {
        return Err(Error::NotFound(Text::new(
            format!("资源 {code} 没有第 {version} 版。"),
            format!("The resource {code} has no version {version}."),
        )));
    };
    if v.status != "pending" {
        return Err(Error::conflict(
            format!("第 {version} 版不是待发布状态（{}）。", v.status),
            format!("Version {version} is not pending ({}).", v.status),
        ));
    }
    Ok(v)
}

/// The operator publishes a pending version: it becomes the live one at once on this
/// instance and within `catalogue_refresh_secs` on the others. The one place where a
/// catalogue change takes effect (and from where it is sent on, e.g. to the region).
pub async fn publish(
    app: &AppState,
    operator: Author<'_>,
    code: &str,
    version: i64,
    now: DateTime<Utc>,
) -> Result<ResourceVersion, Error> {
    let v = pending(
        app.store.resource_version(code, version).await?,
        code,
        version,
    )?;
    // Re-checked against what is live now: another version may have been published since.
    let live = published_of(app, code).await?;
    let issues = catalogue_edit::validate_edit(
        app.catalogue.services(),
        live.as_ref().map(|l| &l.body),
        &v.body,
    );
    if !issues.is_empty() {
        return Err(Error::Invalid(issues));
    }
    if !app
        .store
        .decide_resource_version(code, version, true, (operator.id, operator.name), now, None)
        .await?
    {
        return Err(Error::conflict(
            "该版本已被处理。",
            "This version has been decided already.",
        ));
    }
    reload(app).await?;
    tracing::info!(resource = %code, version, "catalogue version published");
    let published = app
        .store
        .resource_version(code, version)
        .await?
        .ok_or_else(|| no_resource(code))?;
    // The regional cascade (目录同步): the published version goes up to the region
    // (nothing is queued when no region is configured). The publication stands even if
    // queueing fails; the failure is logged for the operator.
    match serde_json::to_value(&published.body) {
        Ok(json) => {
            if let Err(e) =
                crate::region::queue_catalogue_change(app, code, &format!("v{version}"), &json)
                    .await
            {
                tracing::error!(resource = %code, version, error = %format!("{e:#}"), "cannot queue the catalogue change for the region");
            }
        }
        Err(e) => {
            tracing::error!(resource = %code, version, error = %e, "cannot serialise the published version for the region")
        }
    }
    Ok(published)
}

/// The operator returns a pending version to its department with a comment.
pub async fn return_version(
    app: &AppState,
    operator: Author<'_>,
    code: &str,
    version: i64,
    comment: &str,
    now: DateTime<Utc>,
) -> Result<ResourceVersion, Error> {
    let comment = comment.trim();
    if comment.is_empty() {
        return Err(Error::Invalid(vec![Issue {
            field: "comment".into(),
            zh: "退回时请说明原因。".into(),
            en: "Say why the version is returned.".into(),
        }]));
    }
    pending(
        app.store.resource_version(code, version).await?,
        code,
        version,
    )?;
    if !app
        .store
        .decide_resource_version(
            code,
            version,
            false,
            (operator.id, operator.name),
            now,
            Some(comment),
        )
        .await?
    {
        return Err(Error::conflict(
            "该版本已被处理。",
            "This version has been decided already.",
        ));
    }
    app.store
        .resource_version(code, version)
        .await?
        .ok_or_else(|| no_resource(code))
}

/// Imports the definitions' resources the database does not hold yet (version 1,
/// published, by `import`), then makes the published versions live. Returns how many
/// were imported.
pub async fn import_and_load(
    store: &dyn Store,
    catalogue: &Catalogue,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let mut imported = 0;
    for r in catalogue.resources().iter() {
        if store.import_resource(r, now).await? {
            imported += 1;
        }
    }
    catalogue.set_resources(store.published_resources().await?);
    Ok(imported)
}

/// Makes the published versions live now.
pub async fn reload(app: &AppState) -> Result<(), StoreError> {
    app.catalogue
        .set_resources(app.store.published_resources().await?);
    Ok(())
}

/// Re-reads the published versions when their fingerprint differs from `last` (which
/// it updates); true when it did. Run periodically on every instance.
pub async fn refresh(app: &AppState, last: &mut Option<(i64, i64)>) -> Result<bool, StoreError> {
    let now = app.store.catalogue_revision().await?;
    if *last == Some(now) {
        return Ok(false);
    }
    reload(app).await?;
    *last = Some(now);
    Ok(true)
}

/// The demo's catalogue: one pending edit by 人社局 (officer 马强) of its social-insurance
/// resource, adding an item, so the operator's page has a version to compare and
/// publish. Idempotent: nothing is written when the resource has any version after the
/// import.
pub async fn seed_demo(app: &AppState, now: DateTime<Utc>) -> Result<(), Error> {
    const CODE: &str = "social_insurance";
    let versions = app.store.resource_versions(CODE).await?;
    let Some(base) = versions.first() else {
        return Ok(());
    };
    if versions.len() > 1 {
        return Ok(());
    }
    let r = &base.body;
    let mut items = r.items.clone();
    items.push(DataItem {
        id: "insured_place".into(),
        name: "参保地".into(),
        name_en: "Place insured".into(),
        data_type: crate::domain::catalogue::DataType::Address,
        personal: true,
        authoritative: false,
        subject: None,
    });
    let draft = Draft {
        name: r.name.clone(),
        name_en: r.name_en.clone(),
        share_type: r.share_type,
        conditions: r.conditions.clone(),
        conditions_en: r.conditions_en.clone(),
        open: r.open,
        update_cycle: r.update_cycle,
        subject: r.subject,
        items,
        system_id: None,
        note: "增加参保地数据项，供异地就医备案核验。".into(),
    };
    let provider = r.provider.clone();
    edit(
        app,
        &provider,
        Author {
            id: "demo-officer-ma",
            name: "马强",
        },
        CODE,
        &draft,
        now,
    )
    .await?;
    Ok(())
}

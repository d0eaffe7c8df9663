//! The materials a request names: uploads (which must be the caller's and not part of
//! another case) and stand-ins the definition allows (免提交). Read first, then matched
//! in a pure step, so the rules can be tested without a store.

use std::collections::HashMap;

use uuid::Uuid;

use super::Result;
use crate::domain::catalogue::{FileType, Service};
use crate::domain::form::{FieldIssue, ProvidedMaterial};
use crate::state::AppState;
use crate::store::{NewMaterial, UploadRow};

/// A material in a request: an upload, or a stand-in the definition allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaterialInput {
    /// Material id from the service definition.
    pub material: String,
    /// An upload the caller made earlier.
    pub upload_id: Option<Uuid>,
    /// Let shared data or the e-licence named in the definition stand in (免提交).
    pub substitute: bool,
}

/// The materials of a request, matched against the uploads and the definition.
#[derive(Debug, Default)]
pub struct Resolved {
    /// What the form rules check (types, sizes, counts).
    pub provided: Vec<ProvidedMaterial>,
    /// What the case records.
    pub rows: Vec<NewMaterial>,
    /// Inputs that cannot be used, each at `materials[i]`.
    pub issues: Vec<FieldIssue>,
}

/// Reads the uploads the inputs name, then matches them ([`match_inputs`]); `owner` is
/// the account whose uploads may be used.
pub async fn resolve(
    app: &AppState,
    service: &Service,
    inputs: &[MaterialInput],
    owner: Option<Uuid>,
) -> Result<Resolved> {
    let mut uploads = HashMap::new();
    for id in inputs
        .iter()
        .filter(|m| !m.substitute)
        .filter_map(|m| m.upload_id)
    {
        if let Some(u) = app.store.upload(id).await? {
            uploads.insert(id, u);
        }
    }
    let mut resolved = match_inputs(service, inputs, owner, &uploads);
    // An image uploaded without naming its material was not held to the material's pixel
    // sizes then: it is now, from the file's header.
    for (i, m) in inputs.iter().enumerate() {
        let Some(def) = service.materials.iter().find(|d| d.id == m.material) else {
            continue;
        };
        if def.min_width_px.is_none() && def.max_width_px.is_none() {
            continue;
        }
        let Some(u) = m
            .upload_id
            .filter(|_| !m.substitute)
            .and_then(|id| uploads.get(&id))
            .filter(|u| Some(u.owner) == owner && u.case_id.is_none())
        else {
            continue;
        };
        let bytes = app
            .files
            .get(&u.storage_key)
            .await
            .map_err(anyhow::Error::from)?;
        let refusal = match crate::content_check::image_dimensions(&bytes, &u.file_type) {
            Some((w, h)) => crate::content_check::dimension_refusal(def, w, h),
            None if matches!(u.file_type.as_str(), "jpg" | "png") => {
                Some(crate::content_check::Refusal::BrokenImage)
            }
            None => None,
        };
        if let Some(r) = refusal {
            let (zh, en) = r.message();
            resolved.issues.push(FieldIssue {
                field: format!("materials[{i}]"),
                zh,
                en,
            });
        }
    }
    Ok(resolved)
}

/// Matches inputs to the uploads found: an upload counts only when `owner` uploaded it
/// and no case holds it yet; a stand-in records the source the definition names. Pure.
pub fn match_inputs(
    service: &Service,
    inputs: &[MaterialInput],
    owner: Option<Uuid>,
    uploads: &HashMap<Uuid, UploadRow>,
) -> Resolved {
    let mut out = Resolved::default();
    for (i, m) in inputs.iter().enumerate() {
        let field = format!("materials[{i}]");
        match (m.upload_id, m.substitute) {
            (Some(id), false) => {
                let usable = uploads
                    .get(&id)
                    .filter(|u| Some(u.owner) == owner && u.case_id.is_none());
                match usable {
                    Some(u) => {
                        let ft = file_type_from_code(&u.file_type).unwrap_or(FileType::Pdf);
                        out.provided.push(ProvidedMaterial::Upload {
                            material: m.material.clone(),
                            file_type: ft,
                            size: u.size.max(0) as u64,
                        });
                        out.rows.push(NewMaterial {
                            material_id: m.material.clone(),
                            upload_id: Some(u.id),
                            substituted: false,
                            source: None,
                            evidence: None,
                        });
                    }
                    None => out.issues.push(FieldIssue {
                        field,
                        zh: "找不到该上传文件，或它已用于其他办件。请重新上传。".into(),
                        en: "That upload does not exist or is already part of another case. Please upload it again.".into(),
                    }),
                }
            }
            (None, true) => {
                let source = service
                    .materials
                    .iter()
                    .find(|d| d.id == m.material)
                    .and_then(|d| d.substitute.clone());
                out.provided.push(ProvidedMaterial::Substituted {
                    material: m.material.clone(),
                });
                out.rows.push(NewMaterial {
                    material_id: m.material.clone(),
                    upload_id: None,
                    substituted: true,
                    source,
                    evidence: None,
                });
            }
            _ => out.issues.push(FieldIssue {
                field,
                zh: "每项材料须给出 upload_id，或 substitute 为 true（二者取一）。".into(),
                en: "Give each material either an upload_id or substitute: true (one of the two)."
                    .into(),
            }),
        }
    }
    out
}

/// The stored file type code of a definition's file type (as [`crate::files::sniff`]
/// answers it).
pub fn file_type_code(t: FileType) -> &'static str {
    match t {
        FileType::Pdf => "pdf",
        FileType::Jpg => "jpg",
        FileType::Png => "png",
        FileType::Ofd => "ofd",
    }
}

/// Maps a stored file type code to the definition's enum.
pub fn file_type_from_code(code: &str) -> Option<FileType> {
    match code {
        "pdf" => Some(FileType::Pdf),
        "jpg" => Some(FileType::Jpg),
        "png" => Some(FileType::Png),
        "ofd" => Some(FileType::Ofd),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usecases::testing::{self, catalogue};

    fn upload(owner: Uuid, case: Option<Uuid>) -> UploadRow {
        UploadRow {
            id: Uuid::now_v7(),
            owner,
            file_name: "p.jpg".into(),
            file_type: "jpg".into(),
            size: 1000,
            sha256: "00".into(),
            storage_key: "k".into(),
            created_at: chrono::Utc::now(),
            case_id: case,
        }
    }

    #[test]
    fn only_the_callers_unattached_uploads_count() {
        let cat = catalogue();
        let service = cat.service(testing::SSC).expect("service");
        let me = Uuid::now_v7();
        let mine = upload(me, None);
        let theirs = upload(Uuid::now_v7(), None);
        let used = upload(me, Some(Uuid::now_v7()));
        let uploads: HashMap<Uuid, UploadRow> = [&mine, &theirs, &used]
            .into_iter()
            .map(|u| (u.id, u.clone()))
            .collect();
        let input = |id| MaterialInput {
            material: "photo".into(),
            upload_id: Some(id),
            substitute: false,
        };
        let r = match_inputs(
            service,
            &[
                input(mine.id),
                input(theirs.id),
                input(used.id),
                input(Uuid::now_v7()),
            ],
            Some(me),
            &uploads,
        );
        assert_eq!(r.rows.len(), 1);
        assert_eq!(r.rows[0].upload_id, Some(mine.id));
        let fields: Vec<&str> = r.issues.iter().map(|i| i.field.as_str()).collect();
        assert_eq!(fields, ["materials[1]", "materials[2]", "materials[3]"]);
    }

    #[test]
    fn a_stand_in_names_its_source_and_both_or_neither_is_refused() {
        let cat = catalogue();
        let service = cat.service(testing::SSC).expect("service");
        let r = match_inputs(
            service,
            &[
                MaterialInput {
                    material: "id_card".into(),
                    upload_id: None,
                    substitute: true,
                },
                MaterialInput {
                    material: "photo".into(),
                    upload_id: Some(Uuid::now_v7()),
                    substitute: true,
                },
                MaterialInput {
                    material: "photo".into(),
                    upload_id: None,
                    substitute: false,
                },
            ],
            None,
            &HashMap::new(),
        );
        assert_eq!(r.rows.len(), 1);
        assert!(r.rows[0].substituted);
        assert!(r.rows[0].source.is_some(), "the definition's licence");
        assert_eq!(r.issues.len(), 2);
    }
}

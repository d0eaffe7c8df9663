//! The CloudEvents 1.0 envelope a department receives. `data` carries the whole
//! application as it stands when the event is sent (service, applicant, form values,
//! materials with SHA-256, size and an authenticated download link), plus what happened
//! at the time of the event (status and action from the outbox row).

use serde_json::{Value, json};

use crate::app::AppState;
use crate::store::{CaseKey, Delivery, FullCase};

/// Builds the event for a delivery; `None` when its case no longer exists.
pub async fn build(app: &AppState, d: &Delivery) -> anyhow::Result<Option<Value>> {
    let full = app.store.case_full(CaseKey::Id(d.case_id)).await?;
    Ok(full.map(|full| of_full(app, d, &full)))
}

/// The event for a delivery of a case already read with its history and materials
/// ([`crate::store::Store::case_full`]), so the caller can use the same read for the
/// data-access record.
pub fn of_full(app: &AppState, d: &Delivery, full: &FullCase) -> Value {
    let (c, materials, events) = (&full.case, &full.materials, &full.events);
    let cause = events.iter().find(|e| e.seq == d.case_seq);
    let base = app
        .settings
        .server
        .public_url
        .as_str()
        .trim_end_matches('/');
    let service = app.catalogue.service(&c.service_code);
    let materials: Vec<Value> = materials
        .iter()
        .map(|m| {
            json!({
                "material": m.material_id,
                "substituted": m.substituted,
                "source": m.source,
                "evidence": m.evidence,
                "file_name": m.file_name,
                "file_type": m.file_type,
                "size": m.size,
                "sha256": m.sha256,
                "download_url": m.upload_id.map(|u| format!("{base}/api/dept/v1/cases/{}/materials/{u}", c.case_no)),
            })
        })
        .collect();
    json!({
        "specversion": "1.0",
        "id": d.id.to_string(),
        "source": format!("{base}/"),
        "type": d.event_type,
        "subject": c.case_no,
        "time": d.created_at,
        "datacontenttype": "application/json",
        "data": {
            "case_no": c.case_no,
            "event": {
                "action": d.payload.get("action"),
                "status": d.payload.get("status"),
                "note": cause.and_then(|e| e.note.clone()),
                "actor": cause.map(|e| e.actor.clone()),
                "seq": d.case_seq,
            },
            "department": d.department,
            "service": {
                "code": c.service_code,
                "version": c.service_version,
                "name": service.map(|s| s.name.clone()),
            },
            "channel": c.channel,
            "applicant": {
                "kind": c.applicant.kind.code(),
                "name": c.applicant.name,
                "id_number": c.applicant.id_number.as_ref().map(|i| i.expose().to_owned()),
                "uscc": c.applicant.uscc,
                "phone": c.applicant.phone,
            },
            "form": c.form,
            "prefill": c.provenance.as_object().map(|p| p.iter().map(|(field, v)| {
                let mut v = v.clone();
                v["field"] = json!(field);
                v
            }).collect::<Vec<_>>()).unwrap_or_default(),
            "materials": materials,
            "status": c.status,
            "submitted_at": c.created_at,
            "accepted_on": c.accepted_on,
            "due_on": c.due_on,
            "legal_due_on": c.legal_due_on,
        },
    })
}

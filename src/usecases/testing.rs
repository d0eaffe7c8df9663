//! Fixtures for the use cases' unit tests: the repository's real catalogue, a case row to
//! vary, and a gateway state on a scratch SQLite database (no port, no HTTP), so a use
//! case can be run end to end without the application being served.

use std::path::Path;

use chrono::Utc;
use figment::providers::Serialized;
use serde_json::json;
use uuid::Uuid;

use crate::auth::identity::AccountKind;
use crate::config::Settings;
use crate::domain::catalogue::{self, Catalogue};
use crate::state::AppState;
use crate::store::{CaseApplicant, CaseRow};

/// 社会保障卡申领: a promised case (15 working days) of 人社局, accepted at the window.
pub const SSC: &str = "11150700MB15300034-GG-0002";
/// 新生儿出生"一件事": a joint case of 卫健委 routed to four departments.
pub const NEWBORN: &str = "11150700MB15300047-QT-0001";

fn definitions() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("service-definitions")
}

/// The catalogue the gateway ships with.
pub fn catalogue() -> Catalogue {
    catalogue::load_dir(&definitions()).expect("the shipped definitions load")
}

/// A submitted case of `service` with no applicant account and nothing decided yet.
pub fn case_row(service: &str) -> CaseRow {
    let now = Utc::now();
    CaseRow {
        id: Uuid::now_v7(),
        case_no: "HLBE20260302-ABCDEFGH".into(),
        query_code: "123456".into(),
        service_code: service.into(),
        service_version: "v".into(),
        department: "D".into(),
        applicant: CaseApplicant {
            account_id: None,
            kind: AccountKind::Person,
            name: "孟淑华".into(),
            id_number: None,
            uscc: None,
            phone: None,
        },
        channel: "online".into(),
        intake_account: None,
        intake_hall: None,
        status: "submitted".into(),
        form: json!({}),
        accepted_on: None,
        due_on: None,
        legal_due_on: None,
        due_provisional: false,
        pauses: json!([]),
        parts: json!({}),
        concluded_on: None,
        result: None,
        rating: None,
        rating_comment: None,
        rated_at: None,
        provenance: json!({}),
        fields_filled: 0,
        fields_prefilled: 0,
        version: 1,
        created_at: now,
        updated_at: now,
    }
}

/// A gateway state on a fresh SQLite database in `dir`, with the in-memory cache and
/// the shipped catalogue: what the use cases need, built by the production wiring.
pub async fn state(dir: &Path) -> AppState {
    let figment = Settings::defaults()
        .merge(Serialized::default("data_dir", dir))
        .merge(Serialized::default("definitions_dir", definitions()))
        .merge(Serialized::default("development_instance", true));
    let settings = Settings::from_figment(figment).expect("test settings");
    crate::app::Application::build_state(settings)
        .await
        .expect("state")
}

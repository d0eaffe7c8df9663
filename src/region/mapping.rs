//! The field mapping to the regional platform (`region-mapping.toml`): the region's name
//! for every field of the gateway's reports, and its codes for the stage, result and
//! time-limit unit code lists. Data, not code: a region that renames a field or a code
//! changes the file, which `onewindow check` validates. Pure.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::domain::case::{Action, CaseStatus};

/// The fields of a case report (办件信息汇聚), in the gateway's names.
pub const CASE_REPORT_FIELDS: [&str; 19] = [
    "report_id",
    "case_no",
    "query_code",
    "item_code",
    "item_name",
    "department",
    "stage_seq",
    "stage",
    "stage_time",
    "stage_result",
    "accepted_on",
    "legal_limit",
    "legal_limit_unit",
    "promised_limit",
    "promised_limit_unit",
    "legal_due_on",
    "promised_due_on",
    "concluded",
    "conclusion",
];

/// The fields of a catalogue change (目录同步), in the gateway's names.
pub const CATALOGUE_CHANGE_FIELDS: [&str; 7] = [
    "report_id",
    "resource_code",
    "resource_version",
    "resource_name",
    "provider",
    "changed_at",
    "resource",
];

/// The report fields whose values are codes, and the code list each is mapped with.
const CODED: [(&str, CodeList); 5] = [
    ("stage", CodeList::Stages),
    ("stage_result", CodeList::Results),
    ("conclusion", CodeList::Results),
    ("legal_limit_unit", CodeList::LimitUnits),
    ("promised_limit_unit", CodeList::LimitUnits),
];

/// The time-limit units a service definition uses.
pub const LIMIT_UNITS: [&str; 2] = ["working_days", "natural_days"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CodeList {
    Stages,
    Results,
    LimitUnits,
}

/// One table of the file to check: its name, its entries, the gateway names it must
/// cover, and whether the region names must be unique.
type Table<'a> = (
    &'a str,
    &'a BTreeMap<String, String>,
    Vec<&'static str>,
    bool,
);

/// The mapping file.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RegionMapping {
    /// Gateway field → the region's field, for case reports.
    pub case_report: BTreeMap<String, String>,
    /// Gateway field → the region's field, for catalogue changes.
    pub catalogue_change: BTreeMap<String, String>,
    /// Gateway action (`submit`, `accept` …) → the region's stage code.
    pub stages: BTreeMap<String, String>,
    /// Gateway case status → the region's result code.
    pub results: BTreeMap<String, String>,
    /// Time-limit unit (`working_days`, `natural_days`) → the region's code.
    pub limit_units: BTreeMap<String, String>,
}

/// The stage codes the gateway reports: every action of the state machine.
fn stage_codes() -> Vec<&'static str> {
    Action::ALL.iter().map(|a| a.code()).collect()
}

/// The result codes the gateway reports: every status a case can be in after a step.
fn result_codes() -> Vec<&'static str> {
    CaseStatus::ALL
        .iter()
        .filter(|s| **s != CaseStatus::Draft)
        .map(|s| s.code())
        .collect()
}

impl RegionMapping {
    /// Parses the file's text and validates it; every mistake, each with its key.
    pub fn parse(text: &str) -> Result<RegionMapping, Vec<String>> {
        let m: RegionMapping = toml::from_str(text).map_err(|e| vec![e.to_string()])?;
        let errors = m.problems();
        if errors.is_empty() {
            Ok(m)
        } else {
            Err(errors)
        }
    }

    /// Reads and validates a mapping file.
    pub fn load(path: &Path) -> Result<RegionMapping, Vec<String>> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| vec![format!("cannot read {}: {e}", path.display())])?;
        RegionMapping::parse(&text)
    }

    /// Every mistake: a gateway field or code without a name in the region, a name the
    /// gateway does not know, an empty name, two gateway fields with one region name.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let tables: [Table<'_>; 5] = [
            (
                "case_report",
                &self.case_report,
                CASE_REPORT_FIELDS.to_vec(),
                true,
            ),
            (
                "catalogue_change",
                &self.catalogue_change,
                CATALOGUE_CHANGE_FIELDS.to_vec(),
                true,
            ),
            ("stages", &self.stages, stage_codes(), false),
            ("results", &self.results, result_codes(), false),
            (
                "limit_units",
                &self.limit_units,
                LIMIT_UNITS.to_vec(),
                false,
            ),
        ];
        for (table, map, known, unique) in tables {
            for k in &known {
                match map.get(*k) {
                    None => out.push(format!(
                        "{table}.{k}: missing (the region needs a name for it)"
                    )),
                    Some(v) if v.trim().is_empty() => out.push(format!("{table}.{k}: empty")),
                    Some(_) => {}
                }
            }
            for k in map.keys().filter(|k| !known.contains(&k.as_str())) {
                out.push(format!(
                    "{table}.{k}: unknown (known: {})",
                    known.join(", ")
                ));
            }
            if unique {
                let mut seen = BTreeMap::new();
                for (k, v) in map {
                    if let Some(first) = seen.insert(v.as_str(), k.as_str()) {
                        out.push(format!(
                            "{table}.{k}: the region name {v:?} is already given to {first}"
                        ));
                    }
                }
            }
        }
        out
    }

    fn code(&self, list: CodeList, v: &str) -> Option<&str> {
        let map = match list {
            CodeList::Stages => &self.stages,
            CodeList::Results => &self.results,
            CodeList::LimitUnits => &self.limit_units,
        };
        map.get(v).map(String::as_str)
    }

    /// A case report in the region's names and codes. A field the mapping does not name
    /// is left out; a code without a mapping is sent as it is.
    pub fn case_report(&self, report: &Value) -> Value {
        self.rename(&self.case_report, report, true)
    }

    /// A catalogue change in the region's names.
    pub fn catalogue_change(&self, change: &Value) -> Value {
        self.rename(&self.catalogue_change, change, false)
    }

    fn rename(&self, names: &BTreeMap<String, String>, v: &Value, coded: bool) -> Value {
        let Some(obj) = v.as_object() else {
            return v.clone();
        };
        let mut out = Map::new();
        for (k, value) in obj {
            let Some(name) = names.get(k) else { continue };
            let value = match CODED.iter().find(|(f, _)| coded && *f == k) {
                Some((_, list)) => match value.as_str().and_then(|c| self.code(*list, c)) {
                    Some(code) => Value::String(code.to_owned()),
                    None => value.clone(),
                },
                None => value.clone(),
            };
            out.insert(name.clone(), value);
        }
        Value::Object(out)
    }
}

/// The region names a mapping gives, for display (sorted, unique).
pub fn region_names(m: &RegionMapping) -> BTreeSet<&str> {
    m.case_report.values().map(String::as_str).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SHIPPED: &str = include_str!("../../service-definitions/region-mapping.toml");

    #[test]
    fn the_shipped_mapping_is_valid() {
        let m = RegionMapping::parse(SHIPPED).expect("valid");
        assert_eq!(m.case_report.len(), CASE_REPORT_FIELDS.len());
        assert_eq!(region_names(&m).len(), CASE_REPORT_FIELDS.len());
    }

    #[test]
    fn fields_are_renamed_and_codes_mapped() {
        let m = RegionMapping::parse(SHIPPED).expect("valid");
        let report = json!({
            "report_id": "r1",
            "case_no": "2026001",
            "stage": "conclude",
            "stage_result": "approved",
            "conclusion": "approved",
            "legal_limit_unit": "working_days",
            "legal_limit": 20,
            "not_in_the_mapping": 1,
        });
        let out = m.case_report(&report);
        let name = |f: &str| m.case_report[f].clone();
        assert_eq!(out[name("case_no")], "2026001");
        assert_eq!(out[name("stage")], json!(m.stages["conclude"]));
        assert_eq!(out[name("stage_result")], json!(m.results["approved"]));
        assert_eq!(out[name("conclusion")], json!(m.results["approved"]));
        assert_eq!(
            out[name("legal_limit_unit")],
            json!(m.limit_units["working_days"])
        );
        assert_eq!(out[name("legal_limit")], 20);
        assert!(out.get("case_no").is_none(), "no gateway name is left");
        assert_eq!(out.as_object().map(|o| o.len()), Some(7), "{out}");
    }

    #[test]
    fn a_renamed_field_in_the_file_renames_it_in_the_report() {
        let text = SHIPPED.replacen(
            &format!(
                "case_no = {:?}",
                RegionMapping::parse(SHIPPED).expect("ok").case_report["case_no"]
            ),
            "case_no = \"BJLSH\"",
            1,
        );
        let m = RegionMapping::parse(&text).expect("valid");
        let out = m.case_report(&json!({ "case_no": "X1" }));
        assert_eq!(out, json!({ "BJLSH": "X1" }));
    }

    #[test]
    fn catalogue_changes_are_renamed_without_code_lists() {
        let m = RegionMapping::parse(SHIPPED).expect("valid");
        let out = m.catalogue_change(&json!({ "resource_code": "person", "resource": { "a": 1 } }));
        assert_eq!(out[&m.catalogue_change["resource_code"]], "person");
        assert_eq!(out[&m.catalogue_change["resource"]], json!({ "a": 1 }));
    }

    #[test]
    fn every_mistake_is_named_with_its_key() {
        let mut m = RegionMapping::parse(SHIPPED).expect("valid");
        m.case_report.remove("query_code");
        m.case_report.insert("colour".into(), "YS".into());
        let taken = m.case_report["case_no"].clone();
        m.case_report.insert("item_code".into(), taken);
        m.stages.remove("accept");
        m.results.insert("approved".into(), " ".into());
        m.limit_units.insert("fortnights".into(), "F".into());
        let p = m.problems();
        for want in [
            "case_report.query_code: missing",
            "case_report.colour: unknown",
            "is already given to",
            "stages.accept: missing",
            "results.approved: empty",
            "limit_units.fortnights: unknown",
        ] {
            assert!(p.iter().any(|e| e.contains(want)), "{want} not in {p:?}");
        }
        assert_eq!(p.len(), 6, "{p:?}");
    }

    #[test]
    fn unknown_tables_and_bad_toml_are_refused() {
        assert!(RegionMapping::parse("[colours]\nred = \"R\"").is_err());
        assert!(RegionMapping::parse("case_report = 1").is_err());
    }
}

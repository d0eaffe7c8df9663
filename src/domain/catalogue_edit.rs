//! Rules of catalogue management (政务信息资源目录管理) that need no I/O: what a
//! department's edit of a resource may not do, how a version differs from the published
//! one, the public search and the 资源清单 export.
//!
//! An edit is checked against the services that bind the resource's items (a form field's
//! `prefill` or a material's `substitute`): a bound item may not disappear or change its
//! type, and the resource may not stop being shareable to them. Every problem is
//! reported at once, each at the field (`items[2].id`) the edit page shows it next to.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::LazyLock;

use regex::Regex;

use super::catalogue::{
    DataItem, Field, OpenAttribute, Resource, Service, ShareType, Subject, UpdateCycle,
};

/// One problem of an edit, at a field (`name_en`, `share_type`, `items[1].type`), in
/// both languages: the forms' issue type, so the use-case error carries it as it is.
pub use super::form::FieldIssue as Issue;

fn issue(field: impl Into<String>, zh: impl Into<String>, en: impl Into<String>) -> Issue {
    Issue {
        field: field.into(),
        zh: zh.into(),
        en: en.into(),
    }
}

/// Where a service binds an item of a resource.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct BoundItem {
    /// The item id.
    pub item: String,
    /// The service code.
    pub service: String,
}

fn field_bindings<'a>(fields: &'a [Field], out: &mut Vec<&'a str>) {
    for f in fields {
        if let Some(b) = f.prefill.as_deref() {
            out.push(b);
        }
        field_bindings(&f.columns, out);
    }
}

/// Every (item, service) pair where a service's form or materials draw on `resource`.
pub fn bound_items(services: &[Service], resource: &str) -> Vec<BoundItem> {
    let mut out = BTreeSet::new();
    for s in services {
        let mut bs = Vec::new();
        field_bindings(&s.fields, &mut bs);
        bs.extend(s.materials.iter().filter_map(|m| m.substitute.as_deref()));
        for b in bs {
            if let Some((r, i)) = b.split_once('.')
                && r == resource
            {
                out.insert(BoundItem {
                    item: i.to_owned(),
                    service: s.code.clone(),
                });
            }
        }
    }
    out.into_iter().collect()
}

static CODE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z][a-z0-9_]{1,39}$").expect("code pattern"));
static ITEM_ID: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z][a-z0-9_]{0,39}$").expect("item pattern"));

/// The most items one resource may have.
pub const MAX_ITEMS: usize = 200;

fn services_list(codes: &BTreeSet<&str>) -> String {
    codes.iter().copied().collect::<Vec<_>>().join(", ")
}

/// Checks an edit (`old` is the version it replaces, `None` for a proposal) against the
/// services of the catalogue. Empty when it may be written.
pub fn validate_edit(services: &[Service], old: Option<&Resource>, new: &Resource) -> Vec<Issue> {
    let mut out = Vec::new();
    if !CODE.is_match(&new.code) {
        out.push(issue(
            "code",
            "资源代码须为 2–40 位小写字母、数字或下划线，以字母开头。",
            "The resource code must be 2–40 lower-case letters, digits or underscores, starting with a letter.",
        ));
    }
    if new.name.trim().is_empty() {
        out.push(issue("name", "请填写中文名称。", "Enter the Chinese name."));
    }
    if new.name_en.trim().is_empty() {
        out.push(issue(
            "name_en",
            "请填写英文名称。",
            "Enter the English name.",
        ));
    }
    if new.share_type == ShareType::Conditional
        && new
            .conditions
            .as_deref()
            .is_none_or(|c| c.trim().is_empty())
    {
        out.push(issue(
            "conditions",
            "有条件共享的资源须写明共享条件。",
            "A resource shared on conditions must state its conditions.",
        ));
    }
    if new.items.is_empty() {
        out.push(issue(
            "items",
            "资源至少须有一个数据项。",
            "A resource needs at least one data item.",
        ));
    }
    if new.items.len() > MAX_ITEMS {
        out.push(issue(
            "items",
            format!("数据项不得超过 {MAX_ITEMS} 个。"),
            format!("A resource may have at most {MAX_ITEMS} data items."),
        ));
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, item) in new.items.iter().enumerate() {
        if !ITEM_ID.is_match(&item.id) {
            out.push(issue(
                format!("items[{i}].id"),
                "数据项标识须为小写字母、数字或下划线，以字母开头。",
                "An item id must be lower-case letters, digits or underscores, starting with a letter.",
            ));
        } else if let Some(first) = seen.insert(&item.id, i) {
            out.push(issue(
                format!("items[{i}].id"),
                format!("数据项标识 {} 与第 {} 行重复。", item.id, first + 1),
                format!("The item id {} repeats row {}.", item.id, first + 1),
            ));
        }
        if item.name.trim().is_empty() {
            out.push(issue(
                format!("items[{i}].name"),
                "请填写数据项的中文名称。",
                "Enter the item's Chinese name.",
            ));
        }
        if item.name_en.trim().is_empty() {
            out.push(issue(
                format!("items[{i}].name_en"),
                "请填写数据项的英文名称。",
                "Enter the item's English name.",
            ));
        }
    }

    let bound = bound_items(services, &new.code);
    if bound.is_empty() {
        return out;
    }
    let mut by_item: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for b in &bound {
        by_item.entry(&b.item).or_default().insert(&b.service);
    }
    for (item, svcs) in &by_item {
        let list = services_list(svcs);
        match new.items.iter().position(|i| i.id == *item) {
            None => out.push(issue(
                "items",
                format!("数据项 {item} 被以下事项引用，不能删除：{list}。"),
                format!(
                    "The item {item} is bound by these services and cannot be removed: {list}."
                ),
            )),
            Some(i) => {
                let before = old.and_then(|o| o.item(item));
                if let Some(before) = before
                    && before.data_type != new.items[i].data_type
                {
                    out.push(issue(
                        format!("items[{i}].type"),
                        format!("数据项 {item} 被以下事项引用，不能改变类型：{list}。"),
                        format!(
                            "The item {item} is bound by these services and cannot change its type: {list}."
                        ),
                    ));
                }
                if let Some(before) = before
                    && old.map(|o| o.subject_of(before)) != Some(new.subject_of(&new.items[i]))
                {
                    out.push(issue(
                        format!("items[{i}].subject"),
                        format!("数据项 {item} 被以下事项引用，不能改变数据主体：{list}。"),
                        format!(
                            "The item {item} is bound by these services and cannot change whose data it is: {list}."
                        ),
                    ));
                }
            }
        }
    }
    let all: BTreeSet<&str> = bound.iter().map(|b| b.service.as_str()).collect();
    match new.share_type {
        ShareType::NotShared => out.push(issue(
            "share_type",
            format!(
                "以下事项引用本资源，不能改为不予共享：{}。",
                services_list(&all)
            ),
            format!(
                "These services bind this resource, so it cannot become not shared: {}.",
                services_list(&all)
            ),
        )),
        ShareType::Conditional => {
            let ungranted: BTreeSet<&str> = all
                .iter()
                .copied()
                .filter(|s| !new.grants.iter().any(|g| g == s))
                .collect();
            if !ungranted.is_empty() {
                out.push(issue(
                    "share_type",
                    format!(
                        "以下事项引用本资源但未获授权，不能改为有条件共享：{}。",
                        services_list(&ungranted)
                    ),
                    format!(
                        "These services bind this resource without a grant, so it cannot become conditional: {}.",
                        services_list(&ungranted)
                    ),
                ));
            }
        }
        ShareType::Unconditional => {}
    }
    out
}

/// One difference between two versions of a resource, as texts for the comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// What changed: a field name, or `items.<id>` for an item.
    pub field: String,
    /// `added` | `removed` | `changed`.
    pub kind: &'static str,
    /// The published value (empty when added).
    pub before: String,
    /// The new value (empty when removed).
    pub after: String,
}

fn item_text(i: &DataItem) -> String {
    let mut s = format!("{} / {} · {}", i.name, i.name_en, code_of(&i.data_type));
    if i.personal {
        s.push_str(" · personal");
    }
    if i.authoritative {
        s.push_str(" · authoritative");
    }
    if let Some(sub) = i.subject {
        s.push_str(" · ");
        s.push_str(sub.code());
    }
    s
}

/// The serde code of a unit enum (`id_number`, `conditional`).
pub fn code_of<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// What `new` changes of `old` (`None`: everything is added), fields first, then items
/// in the new order, then removed items.
pub fn diff(old: Option<&Resource>, new: &Resource) -> Vec<Change> {
    let mut out = Vec::new();
    let opt = |o: &Option<String>| o.clone().unwrap_or_default();
    let fields = |r: &Resource| -> Vec<(&'static str, String)> {
        vec![
            ("name", r.name.clone()),
            ("name_en", r.name_en.clone()),
            ("provider", r.provider.clone()),
            ("share_type", code_of(&r.share_type)),
            ("conditions", opt(&r.conditions)),
            ("conditions_en", opt(&r.conditions_en)),
            ("open", r.open.code().to_owned()),
            ("update_cycle", code_of(&r.update_cycle)),
            ("subject", r.subject.code().to_owned()),
        ]
    };
    let after = fields(new);
    let before = old.map(fields);
    for (k, (name, a)) in after.iter().enumerate() {
        let b = before.as_ref().map(|b| b[k].1.clone());
        match b {
            None if !a.is_empty() => out.push(Change {
                field: (*name).into(),
                kind: "added",
                before: String::new(),
                after: a.clone(),
            }),
            Some(b) if &b != a => out.push(Change {
                field: (*name).into(),
                kind: "changed",
                before: b,
                after: a.clone(),
            }),
            _ => {}
        }
    }
    for i in &new.items {
        match old.and_then(|o| o.item(&i.id)) {
            None => out.push(Change {
                field: format!("items.{}", i.id),
                kind: "added",
                before: String::new(),
                after: item_text(i),
            }),
            Some(b) if item_text(b) != item_text(i) => out.push(Change {
                field: format!("items.{}", i.id),
                kind: "changed",
                before: item_text(b),
                after: item_text(i),
            }),
            Some(_) => {}
        }
    }
    if let Some(o) = old {
        for i in o.items.iter().filter(|i| new.item(&i.id).is_none()) {
            out.push(Change {
                field: format!("items.{}", i.id),
                kind: "removed",
                before: item_text(i),
                after: String::new(),
            });
        }
    }
    out
}

/// The public search of the catalogue: every given criterion must hold.
#[derive(Debug, Clone, Default)]
pub struct Search {
    /// Text in the code, names, conditions or an item's id or names.
    pub q: Option<String>,
    /// The providing department (USCC).
    pub department: Option<String>,
    /// The sharing class.
    pub share_type: Option<ShareType>,
    /// The open attribute.
    pub open: Option<OpenAttribute>,
}

impl Search {
    /// Whether a resource matches.
    pub fn matches(&self, r: &Resource) -> bool {
        if let Some(d) = self.department.as_deref()
            && r.provider != d
        {
            return false;
        }
        if self.share_type.is_some_and(|t| t != r.share_type) {
            return false;
        }
        if self.open.is_some_and(|o| o != r.open) {
            return false;
        }
        let Some(q) = self.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) else {
            return true;
        };
        let q = q.to_lowercase();
        let hit = |s: &str| s.to_lowercase().contains(&q);
        hit(&r.code)
            || hit(&r.name)
            || hit(&r.name_en)
            || r.conditions.as_deref().is_some_and(hit)
            || r.conditions_en.as_deref().is_some_and(hit)
            || r.items
                .iter()
                .any(|i| hit(&i.id) || hit(&i.name) || hit(&i.name_en))
    }
}

/// (Chinese, English) label of a sharing class.
pub fn share_label(t: ShareType) -> (&'static str, &'static str) {
    match t {
        ShareType::Unconditional => ("无条件共享", "Shared without conditions"),
        ShareType::Conditional => ("有条件共享", "Shared on conditions"),
        ShareType::NotShared => ("不予共享", "Not shared"),
    }
}

/// (Chinese, English) label of an open attribute.
pub fn open_label(o: OpenAttribute) -> (&'static str, &'static str) {
    match o {
        OpenAttribute::Open => ("开放", "Open"),
        OpenAttribute::ConditionalOpen => ("有条件开放", "Open on conditions"),
        OpenAttribute::NotOpen => ("不予开放", "Not open"),
    }
}

/// (Chinese, English) label of an update cycle.
pub fn cycle_label(c: UpdateCycle) -> (&'static str, &'static str) {
    match c {
        UpdateCycle::Realtime => ("实时", "Real time"),
        UpdateCycle::Daily => ("每日", "Daily"),
        UpdateCycle::Weekly => ("每周", "Weekly"),
        UpdateCycle::Monthly => ("每月", "Monthly"),
        UpdateCycle::Yearly => ("每年", "Yearly"),
    }
}

/// The 资源清单 as CSV: one row per data item with its resource's columns, headers in
/// `zh` or English, with a UTF-8 byte-order mark so spreadsheet programs read Chinese.
/// `dept` names a department by USCC.
pub fn inventory_csv(resources: &[&Resource], zh: bool, dept: &dyn Fn(&str) -> String) -> String {
    let headers_zh = [
        "资源代码",
        "资源名称",
        "资源英文名称",
        "提供部门",
        "提供部门代码",
        "共享类型",
        "共享条件",
        "开放属性",
        "更新周期",
        "数据项标识",
        "数据项名称",
        "数据项英文名称",
        "数据类型",
        "个人信息",
        "权威数据",
    ];
    let headers_en = [
        "resource_code",
        "resource_name",
        "resource_name_en",
        "provider",
        "provider_uscc",
        "share_type",
        "conditions",
        "open",
        "update_cycle",
        "item_id",
        "item_name",
        "item_name_en",
        "item_type",
        "personal",
        "authoritative",
    ];
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(if zh { headers_zh } else { headers_en });
    let pick = |p: (&'static str, &'static str)| if zh { p.0 } else { p.1 };
    let yes = |b: bool| {
        if b {
            pick(("是", "yes"))
        } else {
            pick(("否", "no"))
        }
    };
    for r in resources {
        let provider = dept(&r.provider);
        let conditions = if zh {
            r.conditions.clone()
        } else {
            r.conditions_en.clone().or_else(|| r.conditions.clone())
        }
        .unwrap_or_default();
        for i in &r.items {
            let _ = w.write_record([
                r.code.as_str(),
                &r.name,
                &r.name_en,
                &provider,
                &r.provider,
                pick(share_label(r.share_type)),
                &conditions,
                pick(open_label(r.open)),
                pick(cycle_label(r.update_cycle)),
                &i.id,
                &i.name,
                &i.name_en,
                &code_of(&i.data_type),
                yes(i.personal),
                yes(i.authoritative),
            ]);
        }
    }
    let bytes = w.into_inner().unwrap_or_default();
    format!("\u{feff}{}", String::from_utf8_lossy(&bytes))
}

/// Whose data an item is, as a form offers it: the resource's subject or one of its own.
pub fn subject_choices() -> [Subject; 2] {
    [Subject::Person, Subject::Enterprise]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::catalogue::{Access, DataType};

    fn item(id: &str, t: DataType) -> DataItem {
        DataItem {
            id: id.into(),
            name: format!("{id}名"),
            name_en: format!("{id} name"),
            data_type: t,
            personal: false,
            authoritative: false,
            subject: None,
        }
    }

    fn resource() -> Resource {
        Resource {
            code: "person".into(),
            name: "人口基础信息".into(),
            name_en: "Population".into(),
            provider: "11150700MB1530002X".into(),
            share_type: ShareType::Unconditional,
            conditions: None,
            conditions_en: None,
            update_cycle: UpdateCycle::Daily,
            open: OpenAttribute::NotOpen,
            subject: Subject::Person,
            access: Access::BaseLibrary,
            cache_ttl_secs: 300,
            grants: vec![],
            items: vec![item("name", DataType::Text), item("birth", DataType::Date)],
        }
    }

    fn service(code: &str, bindings: &[&str]) -> Service {
        let fields: Vec<String> = bindings
            .iter()
            .enumerate()
            .map(|(i, b)| {
                format!(
                    "[[fields]]\nid = \"f{i}\"\nlabel = \"字段\"\nlabel_en = \"Field\"\ntype = \"text\"\nprefill = \"{b}\"\n"
                )
            })
            .collect();
        let text = format!(
            "code = \"{code}\"\nname = \"事项\"\nname_en = \"Service\"\nitem_type = \"permit\"\n\
             department = \"11150700MB1530002X\"\ncase_kind = \"promised\"\napplicant_types = [\"person\"]\n\
             min_assurance = 1\nchannels = [\"online\"]\n\
             [guide]\nsummary = \"s\"\nsummary_en = \"s\"\nconditions = []\nconditions_en = []\n\
             legal_basis = []\nfee = \"0\"\nfee_en = \"0\"\nlegal_limit = {{ value = 5, unit = \"working_days\" }}\n\
             promised_limit = {{ value = 3, unit = \"working_days\" }}\nmax_visits = 0\n\
             [routing]\ndepartments = [\"11150700MB1530002X\"]\n{}",
            fields.join("")
        );
        toml::from_str(&text).expect("service")
    }

    fn fields(issues: &[Issue]) -> Vec<&str> {
        issues.iter().map(|i| i.field.as_str()).collect()
    }

    #[test]
    fn an_unchanged_resource_is_valid() {
        let r = resource();
        let s = [service("S-1", &["person.name"])];
        assert_eq!(validate_edit(&s, Some(&r), &r), vec![]);
    }

    #[test]
    fn removing_a_bound_item_names_every_service_binding_it() {
        let old = resource();
        let mut new = old.clone();
        new.items.retain(|i| i.id != "name");
        let s = [
            service("S-2", &["person.name"]),
            service("S-1", &["person.name", "person.birth"]),
            service("S-3", &["other.name"]),
        ];
        let issues = validate_edit(&s, Some(&old), &new);
        assert_eq!(fields(&issues), vec!["items"]);
        assert!(issues[0].en.contains("S-1, S-2"), "{issues:?}");
        assert!(!issues[0].en.contains("S-3"));
        assert!(issues[0].zh.contains("S-1, S-2"));
    }

    #[test]
    fn retyping_a_bound_item_is_refused_but_an_unbound_one_may_change() {
        let old = resource();
        let mut new = old.clone();
        new.items[0].data_type = DataType::Date;
        new.items[1].data_type = DataType::Text;
        let issues = validate_edit(&[service("S-1", &["person.name"])], Some(&old), &new);
        assert_eq!(fields(&issues), vec!["items[0].type"]);
    }

    #[test]
    fn a_bound_resource_cannot_become_not_shared_or_conditional_without_grants() {
        let old = resource();
        let s = [
            service("S-1", &["person.name"]),
            service("S-2", &["person.birth"]),
        ];
        let mut new = old.clone();
        new.share_type = ShareType::NotShared;
        let issues = validate_edit(&s, Some(&old), &new);
        assert_eq!(fields(&issues), vec!["share_type"]);
        assert!(issues[0].en.contains("S-1, S-2"));

        new.share_type = ShareType::Conditional;
        new.conditions = Some("依申请".into());
        new.grants = vec!["S-1".into()];
        let issues = validate_edit(&s, Some(&old), &new);
        assert_eq!(fields(&issues), vec!["share_type"]);
        assert!(issues[0].en.ends_with("S-2."), "{issues:?}");
        new.grants.push("S-2".into());
        assert_eq!(validate_edit(&s, Some(&old), &new), vec![]);
        // unbound: anything goes
        new.share_type = ShareType::NotShared;
        assert_eq!(validate_edit(&[], Some(&old), &new), vec![]);
    }

    #[test]
    fn every_form_problem_is_reported_at_its_field() {
        let mut r = resource();
        r.code = "Bad Code".into();
        r.name = " ".into();
        r.name_en = String::new();
        r.share_type = ShareType::Conditional;
        r.items.push(item("name", DataType::Text));
        r.items.push(item("9x", DataType::Text));
        r.items[1].name_en = String::new();
        let issues = validate_edit(&[], None, &r);
        assert_eq!(
            fields(&issues),
            vec![
                "code",
                "name",
                "name_en",
                "conditions",
                "items[1].name_en",
                "items[2].id",
                "items[3].id"
            ]
        );
        assert!(issues[5].en.contains("repeats row 1"));
        r.items.clear();
        assert!(fields(&validate_edit(&[], None, &r)).contains(&"items"));
    }

    #[test]
    fn bindings_in_table_columns_and_materials_count() {
        let mut s = service("S-1", &[]);
        let mut col = service("S-x", &["person.birth"]).fields.remove(0);
        col.columns = vec![col.clone()];
        col.prefill = None;
        s.fields.push(col);
        let b = bound_items(&[s], "person");
        assert_eq!(
            b,
            vec![BoundItem {
                item: "birth".into(),
                service: "S-1".into()
            }]
        );
    }

    #[test]
    fn the_diff_lists_changed_fields_and_added_changed_removed_items() {
        let old = resource();
        let mut new = old.clone();
        new.name_en = "Population register".into();
        new.open = OpenAttribute::Open;
        new.items.remove(1);
        new.items[0].personal = true;
        new.items.push(item("gender", DataType::Code));
        let d = diff(Some(&old), &new);
        let got: Vec<(&str, &str)> = d.iter().map(|c| (c.field.as_str(), c.kind)).collect();
        assert_eq!(
            got,
            vec![
                ("name_en", "changed"),
                ("open", "changed"),
                ("items.name", "changed"),
                ("items.gender", "added"),
                ("items.birth", "removed"),
            ]
        );
        assert_eq!(d[1].before, "not_open");
        assert_eq!(d[1].after, "open");
        assert!(diff(Some(&old), &old).is_empty());
        assert_eq!(
            diff(None, &old)
                .iter()
                .filter(|c| c.kind == "added")
                .count(),
            9
        );
    }

    #[test]
    fn search_matches_text_in_names_and_items_and_the_filters() {
        let r = resource();
        let s = |q: &str| Search {
            q: Some(q.into()),
            ..Search::default()
        };
        assert!(s("人口").matches(&r));
        assert!(s("POPULATION").matches(&r));
        assert!(s("birth").matches(&r));
        assert!(s("name name").matches(&r));
        assert!(!s("营业执照").matches(&r));
        assert!(s("  ").matches(&r));
        let f = Search {
            share_type: Some(ShareType::Conditional),
            ..Search::default()
        };
        assert!(!f.matches(&r));
        let f = Search {
            department: Some("11150700MB1530002X".into()),
            open: Some(OpenAttribute::NotOpen),
            ..Search::default()
        };
        assert!(f.matches(&r));
    }

    #[test]
    fn the_inventory_has_one_row_per_item_and_quotes_what_needs_it() {
        let mut r = resource();
        r.conditions = Some("依申请, 经审批".into());
        let csv = inventory_csv(&[&r], true, &|_| "市公安局".into());
        assert!(csv.starts_with('\u{feff}'));
        let lines: Vec<&str> = csv.trim_end().lines().collect();
        assert_eq!(lines.len(), 3, "{csv}");
        assert!(lines[0].contains("资源代码"));
        assert!(lines[1].starts_with("person,人口基础信息,Population,市公安局,"));
        assert!(lines[1].contains("\"依申请, 经审批\""));
        assert!(lines[2].contains(",birth,"));
        let en = inventory_csv(&[&r], false, &|_| "Police".into());
        assert!(en.contains("Shared without conditions"));
    }
}

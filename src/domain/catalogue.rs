//! The service catalogue (事项目录): departments, service items and the government
//! information resource catalogue (政务信息资源目录) they draw shared data from.
//!
//! Definitions are declarative TOML files in `service-definitions/`. [`load_dir`] reads
//! them and [`validate`] checks every rule it knows, collecting *all* mistakes with file,
//! field and reason, so `onewindow check` can report a broken catalogue in one pass and the
//! server can refuse to start on one. The types here are the parsed, trusted form that the
//! rest of the system reads.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, RwLock};

use regex::Regex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::ids::Uscc;

/// One mistake in the definitions: where it is and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DefinitionError {
    /// File path relative to the definitions directory, e.g. `services/x.toml`.
    pub file: String,
    /// Dotted path of the offending key, e.g. `fields[2].options`; empty for the whole file.
    pub field: String,
    /// What is wrong, in English (operators read these in a terminal).
    pub reason: String,
}

impl fmt::Display for DefinitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: {}", self.file, self.reason)
        } else {
            write!(f, "{}: {}: {}", self.file, self.field, self.reason)
        }
    }
}

/// A department (部门) that owns services or provides shared data.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Department {
    /// 统一社会信用代码, the department's identity everywhere in the system.
    pub uscc: String,
    /// Full Chinese name.
    pub name: String,
    /// Full English name.
    pub name_en: String,
    /// Short name for lists (市场监管局).
    pub short_name: String,
    /// Short English name.
    pub short_name_en: String,
    /// Where applicants can go.
    #[serde(default)]
    pub address: Option<String>,
    /// Public enquiry phone.
    #[serde(default)]
    pub phone: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DepartmentsFile {
    #[serde(default)]
    department: Vec<Department>,
}

/// Sharing class of a resource, per 国发〔2016〕51号.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ShareType {
    /// 无条件共享: any service may use it.
    Unconditional,
    /// 有条件共享: only services named in the resource's grants.
    Conditional,
    /// 不予共享: never bound to a form.
    NotShared,
}

/// Whether a resource may be opened to the public (开放属性, per the city's public-data
/// opening rules): 开放, 有条件开放 or 不予开放. Only the first two can become open datasets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OpenAttribute {
    /// 开放: anyone may download it.
    Open,
    /// 有条件开放: opened under conditions the publisher states.
    ConditionalOpen,
    /// 不予开放: never published (personal data, secrets).
    #[default]
    NotOpen,
}

impl OpenAttribute {
    /// Stable code.
    pub fn code(self) -> &'static str {
        match self {
            OpenAttribute::Open => "open",
            OpenAttribute::ConditionalOpen => "conditional_open",
            OpenAttribute::NotOpen => "not_open",
        }
    }

    /// Whether a dataset may be published from it.
    pub fn publishable(self) -> bool {
        !matches!(self, OpenAttribute::NotOpen)
    }
}

/// How often the provider refreshes a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdateCycle {
    /// As it changes.
    Realtime,
    /// Daily.
    Daily,
    /// Weekly.
    Weekly,
    /// Monthly.
    Monthly,
    /// Yearly.
    Yearly,
}

/// Whose data a resource (or one of its items) holds, which decides the key it is looked
/// up by: a person's resident ID number or an enterprise's USCC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    /// A natural person, keyed by resident ID number.
    #[default]
    Person,
    /// A legal entity, keyed by USCC.
    Enterprise,
}

impl Subject {
    /// Stable code.
    pub fn code(self) -> &'static str {
        match self {
            Subject::Person => "person",
            Subject::Enterprise => "enterprise",
        }
    }
}

/// How the gateway reaches a resource's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// The gateway's own base library, filled by `onewindow import`.
    #[default]
    BaseLibrary,
    /// The providing department's data API, called through the exchange (signed).
    DepartmentApi,
}

/// The kind of value a data item holds; used to check it fits the field it prefills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DataType {
    /// Free text.
    Text,
    /// A calendar date.
    Date,
    /// A number.
    Number,
    /// 身份证号.
    IdNumber,
    /// 统一社会信用代码.
    Uscc,
    /// Phone number.
    Phone,
    /// Postal address.
    Address,
    /// A code from a code list (gender, ethnicity …).
    Code,
    /// An e-licence (电子证照) reference.
    Licence,
}

/// One data item of a shared resource.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DataItem {
    /// Item id, the part after the dot in a binding.
    pub id: String,
    /// Chinese name.
    pub name: String,
    /// English name.
    pub name_en: String,
    /// Value kind.
    #[serde(rename = "type")]
    pub data_type: DataType,
    /// Whether reading it is a read of personal data (audited).
    #[serde(default)]
    pub personal: bool,
    /// An authoritative value (from the register that decides it): a prefilled field
    /// bound to it cannot be changed in the form, and the server re-checks it on submit.
    #[serde(default)]
    pub authoritative: bool,
    /// Whose data the item is, when it differs from the resource's subject (an
    /// enterprise's licence in the e-licence library).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Subject>,
}

/// A shared resource of the information resource catalogue.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    /// Resource code, the part before the dot in a binding (`person`).
    pub code: String,
    /// Chinese name.
    pub name: String,
    /// English name.
    pub name_en: String,
    /// USCC of the providing department.
    pub provider: String,
    /// Sharing class.
    pub share_type: ShareType,
    /// Conditions of sharing (Chinese).
    #[serde(default)]
    pub conditions: Option<String>,
    /// Conditions of sharing (English).
    #[serde(default)]
    pub conditions_en: Option<String>,
    /// Refresh cycle.
    pub update_cycle: UpdateCycle,
    /// Whether it may be opened to the public (开放属性); 不予开放 when unsaid.
    #[serde(default)]
    pub open: OpenAttribute,
    /// Whose data it holds (decides the lookup key).
    #[serde(default)]
    pub subject: Subject,
    /// Where the data comes from.
    #[serde(default)]
    pub access: Access,
    /// How long a value fetched from a department's API is cached (seconds).
    #[serde(default = "default_cache_ttl")]
    pub cache_ttl_secs: u64,
    /// Services entitled to a conditional resource.
    #[serde(default)]
    pub grants: Vec<String>,
    /// The data items.
    #[serde(default)]
    pub items: Vec<DataItem>,
}

fn default_cache_ttl() -> u64 {
    300
}

impl Resource {
    /// One item by id.
    pub fn item(&self, id: &str) -> Option<&DataItem> {
        self.items.iter().find(|i| i.id == id)
    }

    /// Whose data an item is.
    pub fn subject_of(&self, item: &DataItem) -> Subject {
        item.subject.unwrap_or(self.subject)
    }

    /// A licence library: every item is an e-licence, stored one record per licence.
    pub fn is_licence_library(&self) -> bool {
        !self.items.is_empty() && self.items.iter().all(|i| i.data_type == DataType::Licence)
    }

    /// Whether a service may bind this resource's items (the share type and grants).
    pub fn entitles(&self, service: &str) -> bool {
        match self.share_type {
            ShareType::Unconditional => true,
            ShareType::Conditional => self.grants.iter().any(|g| g == service),
            ShareType::NotShared => false,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LifeEventsFile {
    #[serde(default)]
    event: Vec<LifeEvent>,
}

/// A life event (一件事): services people need together at one moment of life, offered
/// as one group (`life-events.toml`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LifeEvent {
    /// Identifier (lower-case letters, digits and _), used in addresses.
    pub code: String,
    /// Chinese name.
    pub name: String,
    /// English name.
    pub name_en: String,
    /// The services' codes, in the order they are usually done.
    pub services: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DataCatalogueFile {
    #[serde(default)]
    resource: Vec<Resource>,
}

/// Type of service item (事项类型).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemType {
    /// 行政许可.
    Permit,
    /// 行政确认.
    Confirmation,
    /// 行政给付.
    Benefit,
    /// 公共服务.
    PublicService,
    /// 行政裁决.
    Adjudication,
    /// 行政奖励.
    Reward,
    /// 其他行政权力.
    Other,
}

impl ItemType {
    /// Every item type, for filters and docs.
    pub const ALL: [ItemType; 7] = [
        ItemType::Permit,
        ItemType::Confirmation,
        ItemType::Benefit,
        ItemType::PublicService,
        ItemType::Adjudication,
        ItemType::Reward,
        ItemType::Other,
    ];

    /// Stable code as in definitions and the API.
    pub fn code(self) -> &'static str {
        match self {
            ItemType::Permit => "permit",
            ItemType::Confirmation => "confirmation",
            ItemType::Benefit => "benefit",
            ItemType::PublicService => "public_service",
            ItemType::Adjudication => "adjudication",
            ItemType::Reward => "reward",
            ItemType::Other => "other",
        }
    }

    /// (Chinese, English) label.
    pub fn labels(self) -> (&'static str, &'static str) {
        match self {
            ItemType::Permit => ("行政许可", "Administrative permit"),
            ItemType::Confirmation => ("行政确认", "Administrative confirmation"),
            ItemType::Benefit => ("行政给付", "Administrative benefit"),
            ItemType::PublicService => ("公共服务", "Public service"),
            ItemType::Adjudication => ("行政裁决", "Administrative adjudication"),
            ItemType::Reward => ("行政奖励", "Administrative reward"),
            ItemType::Other => ("其他行政权力", "Other administrative power"),
        }
    }

    /// Parses a code as used in query strings.
    pub fn from_code(code: &str) -> Option<ItemType> {
        ItemType::ALL.into_iter().find(|t| t.code() == code)
    }
}

/// Case kind (办件类型).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseKind {
    /// 即办件: decided on the spot.
    Immediate,
    /// 承诺件: decided within the promised limit.
    Promised,
    /// 联办件: routed to several departments.
    Joint,
}

impl CaseKind {
    /// (Chinese, English) label.
    pub fn labels(self) -> (&'static str, &'static str) {
        match self {
            CaseKind::Immediate => ("即办件", "Immediate"),
            CaseKind::Promised => ("承诺件", "Promised"),
            CaseKind::Joint => ("联办件", "Joint"),
        }
    }
}

/// Who may apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplicantType {
    /// 自然人.
    Person,
    /// 法人 (through an authorised representative).
    Enterprise,
}

/// Where an application can be lodged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Online, by the applicant.
    Online,
    /// At a service-hall window, by a clerk (一窗受理).
    Window,
}

/// Unit of a time limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitUnit {
    /// 工作日, counted with the holiday calendar.
    WorkingDays,
    /// 自然日.
    NaturalDays,
}

/// A legal or promised time limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TimeLimit {
    /// How many units; 0 means on the spot.
    pub value: u32,
    /// Working or natural days.
    pub unit: LimitUnit,
}

/// A place where the service is handled.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Place {
    /// Chinese name.
    pub name: String,
    /// English name.
    pub name_en: String,
    /// Address.
    pub address: String,
    /// Address in English, if different.
    #[serde(default)]
    pub address_en: Option<String>,
    /// Opening hours.
    pub hours: String,
    /// Opening hours in English.
    pub hours_en: String,
    /// Phone.
    #[serde(default)]
    pub phone: Option<String>,
}

/// The service guide (办事指南).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Guide {
    /// One-paragraph description.
    pub summary: String,
    /// English description.
    pub summary_en: String,
    /// Conditions (受理条件).
    pub conditions: Vec<String>,
    /// Conditions in English, one per Chinese condition.
    pub conditions_en: Vec<String>,
    /// Legal basis (设定依据).
    pub legal_basis: Vec<String>,
    /// Fee (收费标准).
    pub fee: String,
    /// Fee in English.
    pub fee_en: String,
    /// 法定时限: the limit the law sets. Kept as the case's `legal_due_on`; the promised
    /// limit may not exceed it.
    pub legal_limit: TimeLimit,
    /// 承诺时限: the (shorter) limit the city promises; the due date applicants see.
    /// 0 for an immediate case (即办件), which is concluded on the spot.
    pub promised_limit: TimeLimit,
    /// 到现场次数: how many times the applicant must come in person (0: fully online).
    pub max_visits: u8,
    /// What the applicant receives (办理结果).
    #[serde(default)]
    pub result: Option<String>,
    /// The result in English.
    #[serde(default)]
    pub result_en: Option<String>,
    /// Where the service is handled in person.
    #[serde(default)]
    pub places: Vec<Place>,
}

/// Form field types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// One line of text.
    Text,
    /// Several lines of text.
    Textarea,
    /// A number.
    Number,
    /// A date (YYYY-MM-DD).
    Date,
    /// One of `options`.
    Select,
    /// Several of `options`.
    Multiselect,
    /// Yes/no.
    Checkbox,
    /// 身份证号.
    IdNumber,
    /// 统一社会信用代码.
    Uscc,
    /// Mainland mobile or landline.
    Phone,
    /// Email address.
    Email,
    /// Postal address.
    Address,
    /// Rows of `columns`.
    Table,
}

impl FieldType {
    fn has_options(self) -> bool {
        matches!(self, FieldType::Select | FieldType::Multiselect)
    }
    fn is_textual(self) -> bool {
        matches!(
            self,
            FieldType::Text | FieldType::Textarea | FieldType::Address | FieldType::Email
        )
    }
}

/// An option of a select field.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Choice {
    /// Stored value.
    pub value: String,
    /// Chinese label.
    pub label: String,
    /// English label.
    pub label_en: String,
}

/// "Required when another field has this value".
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// Id of a top-level field.
    pub field: String,
    /// The value that makes this field required.
    pub equals: String,
}

/// A form field.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Field {
    /// Field id, the key of its value in submissions and department events.
    pub id: String,
    /// Chinese label.
    pub label: String,
    /// English label.
    pub label_en: String,
    /// Type.
    #[serde(rename = "type")]
    pub field_type: FieldType,
    /// Always required (see `required_if` for a field needed only sometimes).
    #[serde(default)]
    pub required: bool,
    /// Required only when another field has a value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_if: Option<Condition>,
    /// Minimum length in characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u32>,
    /// Maximum length in characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
    /// A regular expression the whole value must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// Minimum number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Maximum number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Earliest date, `YYYY-MM-DD` or `today`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_date: Option<String>,
    /// Latest date, `YYYY-MM-DD` or `today`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_date: Option<String>,
    /// Options of select fields.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<Choice>,
    /// Columns of table fields.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<Field>,
    /// Minimum rows of a table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_rows: Option<u32>,
    /// Maximum rows of a table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rows: Option<u32>,
    /// Help text (Chinese).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// Help text (English).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help_en: Option<String>,
    /// Shared-data item that prefills this field (`person.name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefill: Option<String>,
}

/// How a material is handed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MaterialForm {
    /// 原件.
    Original,
    /// 复印件.
    Copy,
    /// 原件和复印件.
    OriginalAndCopy,
    /// 电子材料.
    Electronic,
}

/// Accepted upload file types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileType {
    /// PDF.
    Pdf,
    /// JPEG.
    Jpg,
    /// PNG.
    Png,
    /// OFD (GB/T 33190 layout documents).
    Ofd,
}

/// An application material (申请材料).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Material {
    /// Material id.
    pub id: String,
    /// Chinese name.
    pub name: String,
    /// English name.
    pub name_en: String,
    /// Must be provided (or substituted).
    pub required: bool,
    /// Original, copy, both, or an electronic file (原件, 复印件 …).
    pub form: MaterialForm,
    /// How many paper copies to bring to the window (at least 1).
    #[serde(default = "one")]
    pub copies: u32,
    /// Accepted file types.
    pub file_types: Vec<FileType>,
    /// Largest upload per file, in MB (1–50); larger files are refused with this limit
    /// named.
    pub max_size_mb: u32,
    /// Images: the least width in pixels (with `min_height_px`); checked at upload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_width_px: Option<u32>,
    /// Images: the least height in pixels (with `min_width_px`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_height_px: Option<u32>,
    /// Images: the greatest width in pixels (with `max_height_px`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_width_px: Option<u32>,
    /// Images: the greatest height in pixels (with `max_width_px`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_height_px: Option<u32>,
    /// Shared data or e-licence that stands in for an upload (免提交).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub substitute: Option<String>,
    /// Help text (Chinese).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// Help text (English).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help_en: Option<String>,
}

fn one() -> u32 {
    1
}

/// Which departments receive a service's applications (through the exchange).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Routing {
    /// USCCs of the target departments; several for a joint case.
    pub departments: Vec<String>,
}

/// A service item (政务服务事项) as defined in one file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// Implementation code (实施编码), opaque and unique.
    pub code: String,
    /// Chinese name.
    pub name: String,
    /// English name.
    pub name_en: String,
    /// Item type.
    pub item_type: ItemType,
    /// USCC of the responsible department.
    pub department: String,
    /// Case kind.
    pub case_kind: CaseKind,
    /// Who may apply.
    pub applicant_types: Vec<ApplicantType>,
    /// Minimum identity assurance level, 1–3.
    pub min_assurance: u8,
    /// Where applications can be lodged.
    pub channels: Vec<Channel>,
    /// The window may accept (受理) the case itself.
    #[serde(default)]
    pub accept_at_window: bool,
    /// Words the catalogue search matches besides the names and the summary (common
    /// names people search by).
    #[serde(default)]
    pub keywords: Vec<String>,
    /// The service guide.
    pub guide: Guide,
    /// The form.
    #[serde(default)]
    pub fields: Vec<Field>,
    /// Materials.
    #[serde(default)]
    pub materials: Vec<Material>,
    /// The departments that receive the applications.
    pub routing: Routing,
}

impl Service {
    /// A content hash of the definition: cases record which version they were lodged
    /// against, so a later change to the form never rewrites history.
    pub fn version(&self) -> String {
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        hex::encode(Sha256::digest(&bytes))
    }

    /// Whether a keyword matches the name, English name, keywords or summary.
    pub fn matches_keyword(&self, keyword: &str) -> bool {
        let k = keyword.trim().to_lowercase();
        if k.is_empty() {
            return true;
        }
        [
            &self.name,
            &self.name_en,
            &self.guide.summary,
            &self.guide.summary_en,
        ]
        .into_iter()
        .chain(self.keywords.iter())
        .any(|s| s.to_lowercase().contains(&k))
    }
}

/// The live resource set: every published resource, shared by all clones of a
/// [`Catalogue`] and replaced as a whole when a version is published (see
/// `usecases::catalogue_mgmt`).
pub type Resources = Arc<Vec<Arc<Resource>>>;

/// The loaded and validated catalogue, shared by the whole server. Departments and
/// services are fixed at start; the resources are the live, published set, which
/// [`Catalogue::set_resources`] replaces without a restart (every clone sees it).
#[derive(Debug, Clone, Default)]
pub struct Catalogue {
    departments: Vec<Department>,
    services: Vec<Service>,
    resources: Arc<RwLock<Resources>>,
    life_events: Vec<LifeEvent>,
    by_code: HashMap<String, usize>,
}

impl Catalogue {
    /// Builds a catalogue from definitions, validating them.
    pub fn new(
        departments: Vec<Department>,
        services: Vec<(String, Service)>,
        resources: Vec<Resource>,
    ) -> Result<Catalogue, Vec<DefinitionError>> {
        let defs = Definitions {
            departments_file: DEPARTMENTS_FILE.to_owned(),
            departments,
            catalogue_file: DATA_CATALOGUE_FILE.to_owned(),
            resources,
            services,
            unparsed_codes: Vec::new(),
            ..Definitions::default()
        };
        let errors = validate(&defs);
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Catalogue::from_valid(defs))
    }

    fn from_valid(defs: Definitions) -> Catalogue {
        let mut services: Vec<Service> = defs.services.into_iter().map(|(_, s)| s).collect();
        services.sort_by(|a, b| a.code.cmp(&b.code));
        let by_code = services
            .iter()
            .enumerate()
            .map(|(i, s)| (s.code.clone(), i))
            .collect();
        Catalogue {
            departments: defs.departments,
            services,
            resources: Arc::new(RwLock::new(Arc::new(
                defs.resources.into_iter().map(Arc::new).collect(),
            ))),
            life_events: defs.life_events,
            by_code,
        }
    }

    /// All departments, in file order.
    pub fn departments(&self) -> &[Department] {
        &self.departments
    }

    /// One department by USCC.
    pub fn department(&self, uscc: &str) -> Option<&Department> {
        self.departments.iter().find(|d| d.uscc == uscc)
    }

    /// All services, ordered by code.
    pub fn services(&self) -> &[Service] {
        &self.services
    }

    /// One service by code.
    pub fn service(&self, code: &str) -> Option<&Service> {
        self.by_code.get(code).map(|&i| &self.services[i])
    }

    /// The shared-data resources: the live, published set at this moment (a snapshot;
    /// a publication later does not change it).
    pub fn resources(&self) -> Resources {
        self.resources
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Replaces the live resource set (a publication, or the periodic re-read of the
    /// published versions). Readers holding an earlier snapshot keep it.
    pub fn set_resources(&self, resources: Vec<Resource>) {
        let mut resources: Vec<Arc<Resource>> = resources.into_iter().map(Arc::new).collect();
        resources.sort_by(|a, b| a.code.cmp(&b.code));
        *self
            .resources
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(resources);
    }

    /// The life events (一件事), in file order.
    pub fn life_events(&self) -> &[LifeEvent] {
        &self.life_events
    }

    /// One resource by code (its live, published version).
    pub fn resource(&self, code: &str) -> Option<Arc<Resource>> {
        self.resources().iter().find(|r| r.code == code).cloned()
    }

    /// Resolves a `resource.item` binding.
    pub fn binding(&self, binding: &str) -> Option<(Arc<Resource>, DataItem)> {
        let (r, i) = binding.split_once('.')?;
        let res = self.resource(r)?;
        let item = res.item(i)?.clone();
        Some((res, item))
    }
}

/// Raw definitions as read from files, before validation.
#[derive(Debug, Default)]
pub struct Definitions {
    departments_file: String,
    departments: Vec<Department>,
    catalogue_file: String,
    resources: Vec<Resource>,
    /// (file name relative to the directory, definition)
    services: Vec<(String, Service)>,
    /// Codes of service files that failed to parse, so that references to them are not
    /// reported a second time as "unknown service".
    unparsed_codes: Vec<String>,
    /// The life events (`life-events.toml`, optional).
    life_events: Vec<LifeEvent>,
}

const DEPARTMENTS_FILE: &str = "departments.toml";
const DATA_CATALOGUE_FILE: &str = "data-catalogue.toml";
const LIFE_EVENTS_FILE: &str = "life-events.toml";
const SERVICES_DIR: &str = "services";

/// Reads and validates a definitions directory: `departments.toml`,
/// `data-catalogue.toml` (optional) and `services/*.toml`. Returns every mistake found.
pub fn load_dir(dir: &Path) -> Result<Catalogue, Vec<DefinitionError>> {
    let mut errors = Vec::new();
    let mut defs = Definitions {
        departments_file: DEPARTMENTS_FILE.to_owned(),
        catalogue_file: DATA_CATALOGUE_FILE.to_owned(),
        ..Definitions::default()
    };

    if !dir.is_dir() {
        return Err(vec![DefinitionError {
            file: dir.display().to_string(),
            field: String::new(),
            reason: "the definitions directory does not exist".into(),
        }]);
    }

    match read_toml::<DepartmentsFile>(dir, DEPARTMENTS_FILE, true) {
        Ok(Some(f)) => defs.departments = f.department,
        Ok(None) => {}
        Err(e) => errors.push(e),
    }
    match read_toml::<DataCatalogueFile>(dir, DATA_CATALOGUE_FILE, false) {
        Ok(Some(f)) => defs.resources = f.resource,
        Ok(None) => {}
        Err(e) => errors.push(e),
    }
    match read_toml::<LifeEventsFile>(dir, LIFE_EVENTS_FILE, false) {
        Ok(Some(f)) => defs.life_events = f.event,
        Ok(None) => {}
        Err(e) => errors.push(e),
    }

    let services_dir = dir.join(SERVICES_DIR);
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&services_dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect(),
        Err(e) => {
            errors.push(DefinitionError {
                file: SERVICES_DIR.into(),
                field: String::new(),
                reason: format!("cannot read the services directory: {e}"),
            });
            Vec::new()
        }
    };
    files.sort();
    for path in files {
        let rel = format!(
            "{SERVICES_DIR}/{}",
            path.file_name().unwrap_or_default().to_string_lossy()
        );
        match read_toml::<Service>(dir, &rel, true) {
            Ok(Some(s)) => defs.services.push((rel, s)),
            Ok(None) => {}
            Err(e) => {
                errors.push(e);
                let code = std::fs::read_to_string(&path)
                    .ok()
                    .and_then(|t| t.parse::<toml::Table>().ok())
                    .and_then(|t| t.get("code").and_then(|c| c.as_str()).map(str::to_owned));
                defs.unparsed_codes.extend(code);
            }
        }
    }
    if defs.services.is_empty() && errors.is_empty() {
        errors.push(DefinitionError {
            file: SERVICES_DIR.into(),
            field: String::new(),
            reason: "no service definitions (*.toml) found".into(),
        });
    }

    errors.extend(validate(&defs));
    if errors.is_empty() {
        Ok(Catalogue::from_valid(defs))
    } else {
        Err(errors)
    }
}

/// Checks definitions given as texts rather than files (the departments file, the data
/// catalogue, and service files as (name, text)), exactly as [`load_dir`] checks a
/// directory: for tools and the fuzz target `service_definition`.
pub fn load_texts(
    departments: &str,
    catalogue: &str,
    services: &[(&str, &str)],
) -> Result<Catalogue, Vec<DefinitionError>> {
    let mut errors = Vec::new();
    let mut defs = Definitions {
        departments_file: DEPARTMENTS_FILE.to_owned(),
        catalogue_file: DATA_CATALOGUE_FILE.to_owned(),
        ..Definitions::default()
    };
    let err = |file: &str, (field, reason): (String, String)| DefinitionError {
        file: file.to_owned(),
        field,
        reason,
    };
    match parse_toml::<DepartmentsFile>(departments) {
        Ok(f) => defs.departments = f.department,
        Err(e) => errors.push(err(DEPARTMENTS_FILE, e)),
    }
    match parse_toml::<DataCatalogueFile>(catalogue) {
        Ok(f) => defs.resources = f.resource,
        Err(e) => errors.push(err(DATA_CATALOGUE_FILE, e)),
    }
    for (name, text) in services {
        let rel = format!("{SERVICES_DIR}/{name}");
        match parse_toml::<Service>(text) {
            Ok(s) => defs.services.push((rel, s)),
            Err(e) => {
                errors.push(err(&rel, e));
                let code = text
                    .parse::<toml::Table>()
                    .ok()
                    .and_then(|t| t.get("code").and_then(|c| c.as_str()).map(str::to_owned));
                defs.unparsed_codes.extend(code);
            }
        }
    }
    errors.extend(validate(&defs));
    if errors.is_empty() {
        Ok(Catalogue::from_valid(defs))
    } else {
        Err(errors)
    }
}

/// Parses one TOML file into `T`, naming the key path of a type or unknown-key error.
fn read_toml<T: serde::de::DeserializeOwned>(
    dir: &Path,
    rel: &str,
    required: bool,
) -> Result<Option<T>, DefinitionError> {
    let err = |field: String, reason: String| DefinitionError {
        file: rel.to_owned(),
        field,
        reason,
    };
    let text = match std::fs::read_to_string(dir.join(rel)) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => return Ok(None),
        Err(e) => return Err(err(String::new(), format!("cannot read: {e}"))),
    };
    parse_toml(&text).map(Some).map_err(|(f, r)| err(f, r))
}

/// Parses TOML text into `T`; the error is (key path, reason).
fn parse_toml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, (String, String)> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
        let msg = e.message().to_owned();
        match line {
            Some(l) => (
                String::new(),
                format!("TOML syntax error on line {l}: {msg}"),
            ),
            None => (String::new(), format!("TOML syntax error: {msg}")),
        }
    })?;
    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        (path, e.into_inner().to_string())
    })
}

static SERVICE_CODE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[0-9A-Za-z][0-9A-Za-z-]{3,63}$").expect("static regex"));
static IDENT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z][a-z0-9_]{0,63}$").expect("static regex"));

/// Collects mistakes for one file.
struct Report<'a> {
    file: &'a str,
    errors: &'a mut Vec<DefinitionError>,
}

impl Report<'_> {
    fn add(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.errors.push(DefinitionError {
            file: self.file.to_owned(),
            field: field.into(),
            reason: reason.into(),
        });
    }

    /// A Chinese text and its English twin must both be present.
    fn bilingual(&mut self, path: &str, key: &str, zh: &str, en: &str) {
        let p = |k: &str| join(path, k);
        if zh.trim().is_empty() {
            self.add(p(key), "must not be empty");
        }
        if en.trim().is_empty() {
            self.add(p(&format!("{key}_en")), "must not be empty (English text)");
        }
    }

    fn bilingual_opt(&mut self, path: &str, key: &str, zh: &Option<String>, en: &Option<String>) {
        match (zh, en) {
            (Some(z), Some(e)) => self.bilingual(path, key, z, e),
            (Some(_), None) => self.add(
                join(path, &format!("{key}_en")),
                "is missing: every Chinese text needs its English twin",
            ),
            (None, Some(_)) => self.add(
                join(path, key),
                "is missing: the English text has no Chinese original",
            ),
            (None, None) => {}
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Checks every cross-file and semantic rule, returning all mistakes found.
pub fn validate(defs: &Definitions) -> Vec<DefinitionError> {
    let mut errors = Vec::new();
    let mut departments = HashSet::new();
    {
        let mut r = Report {
            file: &defs.departments_file,
            errors: &mut errors,
        };
        for (i, d) in defs.departments.iter().enumerate() {
            let path = format!("department[{i}]");
            if let Err(e) = Uscc::parse(&d.uscc) {
                r.add(
                    join(&path, "uscc"),
                    format!("not a valid 统一社会信用代码: {e}"),
                );
            } else if d.uscc != d.uscc.trim().to_ascii_uppercase() {
                r.add(
                    join(&path, "uscc"),
                    "write the code in capitals without spaces",
                );
            }
            if !departments.insert(d.uscc.as_str()) {
                r.add(
                    join(&path, "uscc"),
                    format!("department {} is defined twice", d.uscc),
                );
            }
            r.bilingual(&path, "name", &d.name, &d.name_en);
            r.bilingual(&path, "short_name", &d.short_name, &d.short_name_en);
        }
        if defs.departments.is_empty() {
            r.add("department", "no departments defined");
        }
    }

    let service_codes: HashSet<&str> = defs
        .services
        .iter()
        .map(|(_, s)| s.code.as_str())
        .chain(defs.unparsed_codes.iter().map(String::as_str))
        .collect();
    let mut resources: HashMap<&str, &Resource> = HashMap::new();
    {
        let mut r = Report {
            file: &defs.catalogue_file,
            errors: &mut errors,
        };
        for (i, res) in defs.resources.iter().enumerate() {
            let path = format!("resource[{i}]");
            if !IDENT.is_match(&res.code) {
                r.add(
                    join(&path, "code"),
                    "must be lower-case letters, digits and _ (e.g. person)",
                );
            }
            if resources.insert(res.code.as_str(), res).is_some() {
                r.add(
                    join(&path, "code"),
                    format!("resource {} is defined twice", res.code),
                );
            }
            r.bilingual(&path, "name", &res.name, &res.name_en);
            r.bilingual_opt(&path, "conditions", &res.conditions, &res.conditions_en);
            if !departments.contains(res.provider.as_str()) {
                r.add(
                    join(&path, "provider"),
                    format!("unknown department {}", res.provider),
                );
            }
            if res.share_type != ShareType::Conditional && !res.grants.is_empty() {
                r.add(
                    join(&path, "grants"),
                    "only a conditional (有条件共享) resource has grants",
                );
            }
            for (g, code) in res.grants.iter().enumerate() {
                if !service_codes.contains(code.as_str()) {
                    r.add(
                        format!("{path}.grants[{g}]"),
                        format!("unknown service {code}"),
                    );
                }
            }
            let mut items = HashSet::new();
            for (j, item) in res.items.iter().enumerate() {
                let ipath = format!("{path}.items[{j}]");
                if !IDENT.is_match(&item.id) {
                    r.add(
                        join(&ipath, "id"),
                        "must be lower-case letters, digits and _",
                    );
                }
                if !items.insert(item.id.as_str()) {
                    r.add(
                        join(&ipath, "id"),
                        format!("item {} is defined twice", item.id),
                    );
                }
                r.bilingual(&ipath, "name", &item.name, &item.name_en);
            }
            if res.items.is_empty() {
                r.add(
                    join(&path, "items"),
                    "a resource needs at least one data item",
                );
            }
        }
    }

    let mut seen_codes: HashMap<&str, &str> = HashMap::new();
    for (file, s) in &defs.services {
        let mut r = Report {
            file,
            errors: &mut errors,
        };
        if !SERVICE_CODE.is_match(&s.code) {
            r.add("code", "must be 4–64 letters, digits or '-'");
        }
        if let Some(other) = seen_codes.insert(s.code.as_str(), file.as_str()) {
            r.add(
                "code",
                format!("code {} is already used by {other}", s.code),
            );
        }
        validate_service(&mut r, s, &departments, &resources);
    }
    validate_life_events(&defs.life_events, &service_codes, &mut errors);
    errors
}

/// Life events: unique identifiers, names in both languages, known services.
fn validate_life_events(
    events: &[LifeEvent],
    service_codes: &HashSet<&str>,
    errors: &mut Vec<DefinitionError>,
) {
    let mut r = Report {
        file: LIFE_EVENTS_FILE,
        errors,
    };
    let mut seen = HashSet::new();
    for (i, e) in events.iter().enumerate() {
        let path = format!("event[{i}]");
        if !IDENT.is_match(&e.code) {
            r.add(
                join(&path, "code"),
                "must be lower-case letters, digits and _",
            );
        }
        if !seen.insert(e.code.as_str()) {
            r.add(
                join(&path, "code"),
                format!("event {} is defined twice", e.code),
            );
        }
        r.bilingual(&path, "name", &e.name, &e.name_en);
        if e.services.is_empty() {
            r.add(join(&path, "services"), "name at least one service");
        }
        for (j, code) in e.services.iter().enumerate() {
            if !service_codes.contains(code.as_str()) {
                r.add(
                    format!("{path}.services[{j}]"),
                    format!("unknown service {code}"),
                );
            }
        }
    }
}

fn validate_service(
    r: &mut Report<'_>,
    s: &Service,
    departments: &HashSet<&str>,
    resources: &HashMap<&str, &Resource>,
) {
    r.bilingual("", "name", &s.name, &s.name_en);
    if !departments.contains(s.department.as_str()) {
        r.add("department", format!("unknown department {}", s.department));
    }
    if !(1..=3).contains(&s.min_assurance) {
        r.add(
            "min_assurance",
            format!("must be 1, 2 or 3, got {}", s.min_assurance),
        );
    }
    if s.applicant_types.is_empty() {
        r.add("applicant_types", "name at least one of person, enterprise");
    }
    if s.channels.is_empty() {
        r.add("channels", "name at least one of online, window");
    }
    if s.accept_at_window && !s.channels.contains(&Channel::Window) {
        r.add(
            "accept_at_window",
            "the service is not offered at a window (channels lacks window)",
        );
    }

    let g = &s.guide;
    r.bilingual("guide", "summary", &g.summary, &g.summary_en);
    r.bilingual("guide", "fee", &g.fee, &g.fee_en);
    r.bilingual_opt("guide", "result", &g.result, &g.result_en);
    if g.conditions.is_empty() {
        r.add(
            "guide.conditions",
            "list the conditions of the service (受理条件)",
        );
    }
    if g.conditions.len() != g.conditions_en.len() {
        r.add(
            "guide.conditions_en",
            format!(
                "has {} entries but guide.conditions has {}: translate each condition",
                g.conditions_en.len(),
                g.conditions.len()
            ),
        );
    }
    if g.legal_basis.iter().all(|b| b.trim().is_empty()) {
        r.add(
            "guide.legal_basis",
            "name at least one legal basis (设定依据)",
        );
    }
    if g.promised_limit.unit == g.legal_limit.unit && g.promised_limit.value > g.legal_limit.value {
        r.add(
            "guide.promised_limit",
            format!(
                "promised limit {} exceeds the legal limit {}",
                g.promised_limit.value, g.legal_limit.value
            ),
        );
    }
    match s.case_kind {
        CaseKind::Immediate if g.promised_limit.value != 0 => r.add(
            "guide.promised_limit",
            "an immediate case (即办件) is concluded on the spot: promised limit must be 0",
        ),
        CaseKind::Promised | CaseKind::Joint if g.promised_limit.value == 0 => r.add(
            "guide.promised_limit",
            "a promised or joint case needs a promised limit above 0 (or make it immediate)",
        ),
        _ => {}
    }
    for (i, p) in g.places.iter().enumerate() {
        let path = format!("guide.places[{i}]");
        r.bilingual(&path, "name", &p.name, &p.name_en);
        r.bilingual(&path, "hours", &p.hours, &p.hours_en);
    }

    // Routing
    let targets = &s.routing.departments;
    let mut seen = HashSet::new();
    for (i, d) in targets.iter().enumerate() {
        if !departments.contains(d.as_str()) {
            r.add(
                format!("routing.departments[{i}]"),
                format!("unknown department {d}"),
            );
        }
        if !seen.insert(d.as_str()) {
            r.add(
                format!("routing.departments[{i}]"),
                format!("department {d} is listed twice"),
            );
        }
    }
    match (s.case_kind, targets.len()) {
        (_, 0) => r.add(
            "routing.departments",
            "route the service to at least one department",
        ),
        (CaseKind::Joint, 1) => r.add(
            "routing.departments",
            "a joint case (联办件) is routed to two or more departments",
        ),
        (CaseKind::Immediate | CaseKind::Promised, n) if n > 1 => r.add(
            "routing.departments",
            "only a joint case (联办件) is routed to several departments",
        ),
        _ => {}
    }

    // Fields
    let top: BTreeMap<&str, &Field> = s.fields.iter().map(|f| (f.id.as_str(), f)).collect();
    validate_fields(r, "fields", &s.fields, &top, s, resources, true);

    // Materials
    let mut ids = HashSet::new();
    for (i, m) in s.materials.iter().enumerate() {
        let path = format!("materials[{i}]");
        if !IDENT.is_match(&m.id) {
            r.add(
                join(&path, "id"),
                "must be lower-case letters, digits and _",
            );
        }
        if !ids.insert(m.id.as_str()) {
            r.add(
                join(&path, "id"),
                format!("material {} is defined twice", m.id),
            );
        }
        r.bilingual(&path, "name", &m.name, &m.name_en);
        r.bilingual_opt(&path, "help", &m.help, &m.help_en);
        if m.file_types.is_empty() {
            r.add(
                join(&path, "file_types"),
                "name at least one accepted file type",
            );
        }
        if !(1..=50).contains(&m.max_size_mb) {
            r.add(join(&path, "max_size_mb"), "must be between 1 and 50");
        }
        if m.copies == 0 {
            r.add(join(&path, "copies"), "must be at least 1");
        }
        // pixel dimensions come in pairs, for image types, with min <= max
        let pixels = [
            ("min_width_px", m.min_width_px, m.min_height_px),
            ("max_width_px", m.max_width_px, m.max_height_px),
        ];
        for (key, w, h) in pixels {
            if w.is_some() != h.is_some() {
                r.add(join(&path, key), "give the width and the height together");
            }
            if w.is_some_and(|v| v == 0 || v > 12_000) || h.is_some_and(|v| v == 0 || v > 12_000) {
                r.add(join(&path, key), "pixel sizes must be between 1 and 12000");
            }
        }
        if let (Some(a), Some(b), Some(c), Some(d)) = (
            m.min_width_px,
            m.min_height_px,
            m.max_width_px,
            m.max_height_px,
        ) && (a > c || b > d)
        {
            r.add(
                join(&path, "min_width_px"),
                "the least size is above the greatest",
            );
        }
        let has_pixels = m.min_width_px.is_some() || m.max_width_px.is_some();
        if has_pixels
            && !m
                .file_types
                .iter()
                .any(|t| matches!(t, FileType::Jpg | FileType::Png))
        {
            r.add(
                join(&path, "min_width_px"),
                "pixel sizes apply to images: accept jpg or png",
            );
        }
        if let Some(binding) = &m.substitute
            && let Err(reason) = check_binding(binding, s, resources).map(|_| ())
        {
            r.add(join(&path, "substitute"), reason);
        }
    }
}

fn validate_fields(
    r: &mut Report<'_>,
    base: &str,
    fields: &[Field],
    top: &BTreeMap<&str, &Field>,
    s: &Service,
    resources: &HashMap<&str, &Resource>,
    top_level: bool,
) {
    let mut ids = HashSet::new();
    for (i, f) in fields.iter().enumerate() {
        let path = format!("{base}[{i}]");
        let p = |k: &str| join(&path, k);
        if !IDENT.is_match(&f.id) {
            r.add(
                p("id"),
                "must be lower-case letters, digits and _ (e.g. business_name)",
            );
        }
        if !ids.insert(f.id.as_str()) {
            r.add(p("id"), format!("field {} is defined twice", f.id));
        }
        r.bilingual(&path, "label", &f.label, &f.label_en);
        r.bilingual_opt(&path, "help", &f.help, &f.help_en);

        let t = f.field_type;
        if t.has_options() {
            if f.options.is_empty() {
                r.add(p("options"), "a select field needs options");
            }
            let mut values = HashSet::new();
            for (j, o) in f.options.iter().enumerate() {
                let opath = format!("{path}.options[{j}]");
                if o.value.trim().is_empty() {
                    r.add(join(&opath, "value"), "must not be empty");
                }
                if !values.insert(o.value.as_str()) {
                    r.add(
                        join(&opath, "value"),
                        format!("option {} is listed twice", o.value),
                    );
                }
                r.bilingual(&opath, "label", &o.label, &o.label_en);
            }
        } else if !f.options.is_empty() {
            r.add(
                p("options"),
                "only select and multiselect fields have options",
            );
        }

        if t == FieldType::Table {
            if !top_level {
                r.add(p("type"), "a table cannot be nested inside another table");
            } else if f.columns.is_empty() {
                r.add(p("columns"), "a table field needs columns");
            }
            if let (Some(a), Some(b)) = (f.min_rows, f.max_rows)
                && a > b
            {
                r.add(
                    p("min_rows"),
                    format!("min_rows {a} is greater than max_rows {b}"),
                );
            }
            if top_level {
                validate_fields(r, &p("columns"), &f.columns, top, s, resources, false);
            }
        } else {
            if !f.columns.is_empty() {
                r.add(p("columns"), "only table fields have columns");
            }
            if f.min_rows.is_some() || f.max_rows.is_some() {
                r.add(p("min_rows"), "only table fields have min_rows/max_rows");
            }
        }

        if let (Some(a), Some(b)) = (f.min_length, f.max_length)
            && a > b
        {
            r.add(
                p("min_length"),
                format!("min_length {a} is greater than max_length {b}"),
            );
        }
        if (f.min_length.is_some() || f.max_length.is_some() || f.pattern.is_some())
            && !t.is_textual()
        {
            r.add(
                p("type"),
                "min_length, max_length and pattern apply only to text, textarea, address and email fields",
            );
        }
        if let Some(pattern) = &f.pattern
            && let Err(e) = Regex::new(pattern)
        {
            r.add(p("pattern"), format!("not a valid regular expression: {e}"));
        }
        if f.min.is_some() || f.max.is_some() {
            if t != FieldType::Number {
                r.add(p("min"), "min and max apply only to number fields");
            }
            if let (Some(a), Some(b)) = (f.min, f.max)
                && a > b
            {
                r.add(p("min"), format!("min {a} is greater than max {b}"));
            }
        }
        for (key, value) in [("min_date", &f.min_date), ("max_date", &f.max_date)] {
            if let Some(v) = value {
                if t != FieldType::Date {
                    r.add(p(key), "applies only to date fields");
                } else if v != "today" && chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").is_err()
                {
                    r.add(p(key), format!("{v:?} is neither YYYY-MM-DD nor \"today\""));
                }
            }
        }

        if let Some(cond) = &f.required_if {
            if f.required {
                r.add(p("required_if"), "the field is already always required");
            }
            match top.get(cond.field.as_str()) {
                None => r.add(
                    p("required_if.field"),
                    format!("unknown field {}", cond.field),
                ),
                Some(other) if other.id == f.id => {
                    r.add(p("required_if.field"), "a field cannot depend on itself")
                }
                Some(other) => {
                    if other.field_type.has_options()
                        && !other.options.iter().any(|o| o.value == cond.equals)
                    {
                        r.add(
                            p("required_if.equals"),
                            format!("{:?} is not an option of field {}", cond.equals, other.id),
                        );
                    }
                }
            }
        }

        if let Some(binding) = &f.prefill {
            match check_binding(binding, s, resources) {
                Err(reason) => r.add(p("prefill"), reason),
                Ok(item) => {
                    if !data_fits_field(item.data_type, t) {
                        r.add(
                            p("prefill"),
                            format!(
                                "{binding} holds {:?} data, which cannot fill a {:?} field",
                                item.data_type, t
                            ),
                        );
                    }
                }
            }
        }
    }
}

/// Checks a `resource.item` binding exists and the service is entitled to it.
fn check_binding<'r>(
    binding: &str,
    s: &Service,
    resources: &HashMap<&str, &'r Resource>,
) -> Result<&'r DataItem, String> {
    let service = s.code.as_str();
    let Some((res_code, item_id)) = binding.split_once('.') else {
        return Err(format!(
            "{binding:?} is not of the form resource.item (e.g. person.name)"
        ));
    };
    let Some(res) = resources.get(res_code) else {
        return Err(format!(
            "unknown shared-data resource {res_code:?} (see data-catalogue.toml)"
        ));
    };
    let Some(item) = res.items.iter().find(|i| i.id == item_id) else {
        return Err(format!("resource {res_code} has no data item {item_id:?}"));
    };
    if res.subject_of(item) == Subject::Enterprise
        && !s.applicant_types.contains(&ApplicantType::Enterprise)
    {
        return Err(format!(
            "{binding} is an enterprise's data, but enterprises cannot apply for this service (applicant_types)"
        ));
    }
    match res.share_type {
        ShareType::Unconditional => Ok(item),
        ShareType::Conditional if res.entitles(service) => Ok(item),
        ShareType::Conditional => Err(format!(
            "resource {res_code} is conditionally shared (有条件共享) and grants this service no entitlement: add {service} to its grants in data-catalogue.toml"
        )),
        ShareType::NotShared => Err(format!(
            "resource {res_code} is not shared (不予共享) and can never be bound to a form"
        )),
    }
}

fn data_fits_field(data: DataType, field: FieldType) -> bool {
    use FieldType as F;
    match data {
        DataType::IdNumber => field == F::IdNumber,
        DataType::Uscc => field == F::Uscc,
        DataType::Date => field == F::Date,
        DataType::Phone => matches!(field, F::Phone | F::Text),
        DataType::Number => matches!(field, F::Number | F::Text),
        DataType::Address => matches!(field, F::Address | F::Text | F::Textarea),
        DataType::Code => matches!(field, F::Select | F::Text),
        DataType::Text | DataType::Licence => {
            matches!(field, F::Text | F::Textarea | F::Address | F::Select)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_checked_as_the_directory_is() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("service-definitions");
        let read = |rel: &str| std::fs::read_to_string(dir.join(rel)).expect("read");
        let (deps, cat) = (read(DEPARTMENTS_FILE), read(DATA_CATALOGUE_FILE));
        let mut files: Vec<(String, String)> = std::fs::read_dir(dir.join(SERVICES_DIR))
            .expect("services")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .map(|name| (name.clone(), read(&format!("{SERVICES_DIR}/{name}"))))
            .collect();
        let borrowed: Vec<(&str, &str)> = files
            .iter()
            .map(|(n, t)| (n.as_str(), t.as_str()))
            .collect();
        let c = load_texts(&deps, &cat, &borrowed).expect("valid");
        assert_eq!(c.services().len(), files.len());
        let ssc = files
            .iter_mut()
            .find(|(n, _)| n == "rs-sbk-sl.toml")
            .expect("rs-sbk-sl.toml");
        ssc.1 = ssc
            .1
            .replacen("min_assurance = 2", "min_assurance = \"two\"", 1);
        let borrowed: Vec<(&str, &str)> = files
            .iter()
            .map(|(n, t)| (n.as_str(), t.as_str()))
            .collect();
        let errs = load_texts(&deps, &cat, &borrowed).expect_err("invalid");
        assert!(
            errs.iter().any(|e| e.file == "services/rs-sbk-sl.toml"),
            "{errs:?}"
        );
        assert!(load_texts("[[", &cat, &[]).is_err());
    }

    const DEPT: &str = "11150700MB1530001X";
    const DEPT2: &str = "11150700MB15300021";

    fn department(uscc: &str) -> Department {
        Department {
            uscc: uscc.into(),
            name: "某局".into(),
            name_en: "Some Bureau".into(),
            short_name: "某局".into(),
            short_name_en: "Bureau".into(),
            address: None,
            phone: None,
        }
    }

    fn service_toml() -> String {
        format!(
            r#"
code = "TEST-0001"
name = "测试事项"
name_en = "Test service"
item_type = "permit"
department = "{DEPT}"
case_kind = "promised"
applicant_types = ["person"]
min_assurance = 2
channels = ["online", "window"]
[guide]
summary = "摘要"
summary_en = "Summary"
conditions = ["条件"]
conditions_en = ["Condition"]
legal_basis = ["某法第一条"]
fee = "不收费"
fee_en = "Free"
legal_limit = {{ value = 20, unit = "working_days" }}
promised_limit = {{ value = 5, unit = "working_days" }}
max_visits = 0
[[fields]]
id = "name"
label = "姓名"
label_en = "Name"
type = "text"
required = true
prefill = "person.name"
[[fields]]
id = "kind"
label = "类型"
label_en = "Kind"
type = "select"
required = true
options = [{{ value = "a", label = "甲", label_en = "A" }}, {{ value = "b", label = "乙", label_en = "B" }}]
[[fields]]
id = "detail"
label = "说明"
label_en = "Detail"
type = "textarea"
required_if = {{ field = "kind", equals = "b" }}
max_length = 200
[[materials]]
id = "id_card"
name = "身份证"
name_en = "ID card"
required = true
form = "copy"
file_types = ["pdf"]
max_size_mb = 5
substitute = "elicence.resident_id_card"
[routing]
departments = ["{DEPT}"]
"#
        )
    }

    fn resources() -> Vec<Resource> {
        let item = |id: &str, t: DataType| DataItem {
            id: id.into(),
            name: "项".into(),
            name_en: "Item".into(),
            data_type: t,
            personal: true,
            authoritative: false,
            subject: None,
        };
        vec![
            Resource {
                code: "person".into(),
                name: "人口".into(),
                name_en: "Population".into(),
                provider: DEPT.into(),
                share_type: ShareType::Conditional,
                conditions: None,
                conditions_en: None,
                update_cycle: UpdateCycle::Daily,
                open: OpenAttribute::NotOpen,
                subject: Subject::Person,
                access: Access::BaseLibrary,
                cache_ttl_secs: 300,
                grants: vec!["TEST-0001".into()],
                items: vec![
                    item("name", DataType::Text),
                    item("id_number", DataType::IdNumber),
                ],
            },
            Resource {
                code: "elicence".into(),
                name: "电子证照".into(),
                name_en: "E-licences".into(),
                provider: DEPT.into(),
                share_type: ShareType::Unconditional,
                conditions: None,
                conditions_en: None,
                update_cycle: UpdateCycle::Realtime,
                open: OpenAttribute::NotOpen,
                subject: Subject::Person,
                access: Access::BaseLibrary,
                cache_ttl_secs: 300,
                grants: vec![],
                items: vec![item("resident_id_card", DataType::Licence)],
            },
            Resource {
                code: "secret".into(),
                name: "不共享".into(),
                name_en: "Not shared".into(),
                provider: DEPT.into(),
                share_type: ShareType::NotShared,
                conditions: None,
                conditions_en: None,
                update_cycle: UpdateCycle::Yearly,
                open: OpenAttribute::NotOpen,
                subject: Subject::Person,
                access: Access::BaseLibrary,
                cache_ttl_secs: 300,
                grants: vec![],
                items: vec![item("file", DataType::Text)],
            },
        ]
    }

    fn defs_with(edit: impl FnOnce(&mut toml::Table)) -> Definitions {
        let mut table: toml::Table = service_toml().parse().expect("test toml");
        edit(&mut table);
        let service: Service = toml::Value::Table(table).try_into().expect("service shape");
        Definitions {
            departments_file: DEPARTMENTS_FILE.into(),
            departments: vec![department(DEPT), department(DEPT2)],
            catalogue_file: DATA_CATALOGUE_FILE.into(),
            resources: resources(),
            services: vec![("services/test.toml".into(), service)],
            unparsed_codes: vec![],
            life_events: vec![],
        }
    }

    fn errors_of(defs: &Definitions) -> Vec<(String, String)> {
        validate(defs)
            .into_iter()
            .map(|e| (e.file, e.field))
            .collect()
    }

    fn field_mut(t: &mut toml::Table, i: usize) -> &mut toml::Table {
        t["fields"].as_array_mut().expect("fields")[i]
            .as_table_mut()
            .expect("field")
    }

    fn set(t: &mut toml::Table, path: &[&str], v: toml::Value) {
        let mut cur = t;
        for k in &path[..path.len() - 1] {
            cur = cur
                .entry(k.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .expect("table");
        }
        cur.insert(path[path.len() - 1].to_string(), v);
    }

    #[test]
    fn the_reference_definition_is_valid() {
        assert_eq!(errors_of(&defs_with(|_| {})), vec![]);
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let err = parse_toml::<Service>("code = \"x\"\nname = \n").expect_err("bad toml");
        assert!(err.1.contains("line 2"), "{err:?}");
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key_path() {
        let text = service_toml().replace("type = \"textarea\"", "type = \"essay\"");
        let err = parse_toml::<Service>(&text).expect_err("bad type");
        assert_eq!(err.0, "fields[2].type");
        assert!(err.1.contains("essay"), "{err:?}");

        let text =
            service_toml().replace("label_en = \"Kind\"", "label_en = \"Kind\"\nlable = \"x\"");
        let err = parse_toml::<Service>(&text).expect_err("typo key");
        assert!(err.1.contains("lable"), "{err:?}");
    }

    #[test]
    fn unknown_department_is_reported() {
        let d = defs_with(|t| set(t, &["department"], "11150700MB15300034".into()));
        assert_eq!(
            errors_of(&d),
            vec![("services/test.toml".into(), "department".into())]
        );
    }

    #[test]
    fn invalid_department_uscc_is_reported() {
        let mut d = defs_with(|_| {});
        d.departments.push(department("11150700MB15300035"));
        assert_eq!(
            errors_of(&d),
            vec![("departments.toml".into(), "department[2].uscc".into())]
        );
    }

    #[test]
    fn duplicate_department_is_reported() {
        let mut d = defs_with(|_| {});
        d.departments.push(department(DEPT));
        assert_eq!(
            errors_of(&d),
            vec![("departments.toml".into(), "department[2].uscc".into())]
        );
    }

    #[test]
    fn duplicate_service_code_names_both_files() {
        let mut d = defs_with(|_| {});
        let copy = d.services[0].1.clone();
        d.services.push(("services/copy.toml".into(), copy));
        let errs = validate(&d);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].file, "services/copy.toml");
        assert!(errs[0].reason.contains("services/test.toml"));
    }

    #[test]
    fn malformed_service_code_is_reported() {
        let d = defs_with(|t| set(t, &["code"], "a b".into()));
        assert!(errors_of(&d).contains(&("services/test.toml".into(), "code".into())));
    }

    #[test]
    fn missing_english_text_is_reported() {
        let d = defs_with(|t| {
            set(t, &["name_en"], "".into());
            field_mut(t, 0).insert("label_en".into(), " ".into());
        });
        assert_eq!(
            errors_of(&d),
            vec![
                ("services/test.toml".into(), "name_en".into()),
                ("services/test.toml".into(), "fields[0].label_en".into())
            ]
        );
    }

    #[test]
    fn untranslated_conditions_are_reported() {
        let d = defs_with(|t| {
            set(
                t,
                &["guide", "conditions"],
                toml::Value::Array(vec!["一".into(), "二".into()]),
            )
        });
        assert_eq!(
            errors_of(&d),
            vec![("services/test.toml".into(), "guide.conditions_en".into())]
        );
    }

    #[test]
    fn promised_limit_beyond_legal_limit_is_reported() {
        let d = defs_with(|t| {
            set(t, &["guide", "promised_limit", "value"], 30.into());
        });
        assert_eq!(
            errors_of(&d),
            vec![("services/test.toml".into(), "guide.promised_limit".into())]
        );
    }

    #[test]
    fn immediate_case_with_a_promised_limit_is_reported() {
        let d = defs_with(|t| set(t, &["case_kind"], "immediate".into()));
        assert_eq!(
            errors_of(&d),
            vec![("services/test.toml".into(), "guide.promised_limit".into())]
        );
    }

    #[test]
    fn joint_case_needs_two_departments_and_others_only_one() {
        let d = defs_with(|t| set(t, &["case_kind"], "joint".into()));
        assert_eq!(
            errors_of(&d),
            vec![("services/test.toml".into(), "routing.departments".into())]
        );
        let d = defs_with(|t| {
            set(
                t,
                &["routing", "departments"],
                toml::Value::Array(vec![DEPT.into(), DEPT2.into()]),
            )
        });
        assert_eq!(
            errors_of(&d),
            vec![("services/test.toml".into(), "routing.departments".into())]
        );
        let d = defs_with(|t| {
            set(t, &["case_kind"], "joint".into());
            set(
                t,
                &["routing", "departments"],
                toml::Value::Array(vec![DEPT.into(), DEPT2.into()]),
            )
        });
        assert_eq!(errors_of(&d), vec![]);
    }

    #[test]
    fn duplicate_field_id_is_reported() {
        let d = defs_with(|t| {
            field_mut(t, 1).insert("id".into(), "name".into());
        });
        assert!(errors_of(&d).contains(&("services/test.toml".into(), "fields[1].id".into())));
    }

    #[test]
    fn select_without_options_is_reported() {
        let d = defs_with(|t| {
            field_mut(t, 1).remove("options");
        });
        // also breaks the required_if that points at option "b"
        let errs = errors_of(&d);
        assert!(
            errs.contains(&("services/test.toml".into(), "fields[1].options".into())),
            "{errs:?}"
        );
    }

    #[test]
    fn required_if_must_point_at_a_field_and_an_option() {
        let d = defs_with(|t| {
            field_mut(t, 2).insert(
                "required_if".into(),
                toml::Value::Table(toml::toml! { field = "missing"
                equals = "b" }),
            );
        });
        assert_eq!(
            errors_of(&d),
            vec![(
                "services/test.toml".into(),
                "fields[2].required_if.field".into()
            )]
        );
        let d = defs_with(|t| {
            field_mut(t, 2).insert(
                "required_if".into(),
                toml::Value::Table(toml::toml! { field = "kind"
                equals = "c" }),
            );
        });
        assert_eq!(
            errors_of(&d),
            vec![(
                "services/test.toml".into(),
                "fields[2].required_if.equals".into()
            )]
        );
    }

    #[test]
    fn invalid_pattern_is_reported() {
        let d = defs_with(|t| {
            field_mut(t, 2).insert("pattern".into(), "([a-z".into());
        });
        assert_eq!(
            errors_of(&d),
            vec![("services/test.toml".into(), "fields[2].pattern".into())]
        );
    }

    #[test]
    fn inverted_bounds_are_reported() {
        let d = defs_with(|t| {
            field_mut(t, 2).insert("min_length".into(), 300.into());
        });
        assert_eq!(
            errors_of(&d),
            vec![("services/test.toml".into(), "fields[2].min_length".into())]
        );
    }

    #[test]
    fn table_rules_are_reported() {
        let d = defs_with(|t| {
            field_mut(t, 2).insert("type".into(), "table".into());
            field_mut(t, 2).remove("max_length");
        });
        assert_eq!(
            errors_of(&d),
            vec![("services/test.toml".into(), "fields[2].columns".into())]
        );
    }

    #[test]
    fn unknown_prefill_binding_is_reported() {
        let d = defs_with(|t| {
            field_mut(t, 0).insert("prefill".into(), "person.nickname".into());
        });
        let errs = validate(&d);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "fields[0].prefill");
        assert!(errs[0].reason.contains("nickname"));
    }

    #[test]
    fn unentitled_conditional_binding_is_reported() {
        let mut d = defs_with(|_| {});
        d.resources[0].grants.clear();
        let errs = validate(&d);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].field, "fields[0].prefill");
        assert!(errs[0].reason.contains("grants"));
    }

    #[test]
    fn not_shared_binding_is_reported() {
        let d = defs_with(|t| {
            field_mut(t, 0).insert("prefill".into(), "secret.file".into());
        });
        let errs = validate(&d);
        assert_eq!(errs.len(), 1);
        assert!(errs[0].reason.contains("不予共享"));
    }

    #[test]
    fn binding_of_the_wrong_kind_is_reported() {
        let d = defs_with(|t| {
            field_mut(t, 0).insert("prefill".into(), "person.id_number".into());
        });
        assert_eq!(
            errors_of(&d),
            vec![("services/test.toml".into(), "fields[0].prefill".into())]
        );
    }

    #[test]
    fn material_rules_are_reported() {
        let d = defs_with(|t| {
            let m = t["materials"].as_array_mut().expect("materials")[0]
                .as_table_mut()
                .expect("material");
            m.insert("max_size_mb".into(), 500.into());
            m.insert("file_types".into(), toml::Value::Array(vec![]));
            m.insert("substitute".into(), "elicence.passport".into());
        });
        assert_eq!(
            errors_of(&d),
            vec![
                (
                    "services/test.toml".into(),
                    "materials[0].file_types".into()
                ),
                (
                    "services/test.toml".into(),
                    "materials[0].max_size_mb".into()
                ),
                (
                    "services/test.toml".into(),
                    "materials[0].substitute".into()
                ),
            ]
        );
    }

    #[test]
    fn catalogue_grants_must_name_known_services() {
        let mut d = defs_with(|_| {});
        d.resources[0].grants.push("NOPE-0001".into());
        assert_eq!(
            errors_of(&d),
            vec![("data-catalogue.toml".into(), "resource[0].grants[1]".into())]
        );
    }

    #[test]
    fn every_mistake_is_reported_not_only_the_first() {
        let d = defs_with(|t| {
            set(t, &["min_assurance"], 9.into());
            set(t, &["department"], "11150700MB15300034".into());
            field_mut(t, 2).insert("pattern".into(), "(".into());
        });
        assert_eq!(validate(&d).len(), 3);
    }

    #[test]
    fn keyword_search_looks_at_names_and_keywords() {
        let d = defs_with(|t| {
            set(
                t,
                &["keywords"],
                toml::Value::Array(vec!["营业执照".into()]),
            )
        });
        let s = &d.services[0].1;
        assert!(s.matches_keyword("营业执照"));
        assert!(s.matches_keyword("TEST service"));
        assert!(!s.matches_keyword("护照"));
    }

    #[test]
    fn life_events_name_known_services_in_both_languages() {
        let mut d = defs_with(|_| {});
        let code = d.services[0].1.code.clone();
        d.life_events = vec![
            LifeEvent {
                code: "newborn".into(),
                name: "新生儿出生".into(),
                name_en: "A baby is born".into(),
                services: vec![code.clone()],
            },
            LifeEvent {
                code: "Bad Code".into(),
                name: "开办企业".into(),
                name_en: " ".into(),
                services: vec![code, "NO-SUCH-SERVICE".into()],
            },
        ];
        assert_eq!(
            errors_of(&d),
            vec![
                ("life-events.toml".into(), "event[1].code".into()),
                ("life-events.toml".into(), "event[1].name_en".into()),
                ("life-events.toml".into(), "event[1].services[1]".into()),
            ]
        );
        d.life_events.truncate(1);
        assert!(errors_of(&d).is_empty());
        let cat = Catalogue::from_valid(d);
        assert_eq!(cat.life_events()[0].code, "newborn");
    }

    #[test]
    fn version_changes_when_the_definition_changes() {
        let a = defs_with(|_| {}).services.remove(0).1;
        let b = defs_with(|t| set(t, &["name"], "改名".into()))
            .services
            .remove(0)
            .1;
        assert_eq!(a.version(), a.clone().version());
        assert_ne!(a.version(), b.version());
    }
}

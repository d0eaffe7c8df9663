//! The checks a dataset's file passes before it is published (pure, no I/O): it parses
//! as CSV with a header; it holds no column of personal data (resident ID numbers with a
//! valid check digit, mobile numbers, personal names by header or by values); and it
//! matches its schema (the same columns in the same order, every value parses as its
//! field's type). Every issue names its column, in Chinese and English.

use std::collections::HashSet;
use std::sync::LazyLock;

use chrono::NaiveDate;
use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::domain::ids::ResidentId;

/// The most rows a file may have.
pub const MAX_ROWS: usize = 100_000;

/// A field's type, as Frictionless Table Schema names it (so a data package's schema
/// is this list as it is).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = OpenFieldType)]
pub enum FieldType {
    /// Any text.
    String,
    /// A whole number.
    Integer,
    /// A decimal number.
    Number,
    /// `YYYY-MM-DD`.
    Date,
    /// `true` or `false`.
    Boolean,
}

impl FieldType {
    /// The Table Schema name.
    pub fn code(self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Integer => "integer",
            FieldType::Number => "number",
            FieldType::Date => "date",
            FieldType::Boolean => "boolean",
        }
    }

    /// From the Table Schema name.
    pub fn parse(code: &str) -> Option<FieldType> {
        Some(match code.trim() {
            "string" => FieldType::String,
            "integer" => FieldType::Integer,
            "number" => FieldType::Number,
            "date" => FieldType::Date,
            "boolean" => FieldType::Boolean,
            _ => return None,
        })
    }

    /// Whether a (non-empty) cell holds a value of this type.
    pub fn accepts(self, value: &str) -> bool {
        match self {
            FieldType::String => true,
            FieldType::Integer => value.parse::<i64>().is_ok(),
            FieldType::Number => value.parse::<f64>().is_ok_and(f64::is_finite),
            FieldType::Date => NaiveDate::parse_from_str(value, "%Y-%m-%d").is_ok(),
            FieldType::Boolean => matches!(value, "true" | "false"),
        }
    }

    /// The cell as a JSON value of this type (text when it does not parse; empty is null).
    pub fn json(self, value: &str) -> serde_json::Value {
        use serde_json::Value;
        if value.is_empty() {
            return Value::Null;
        }
        match self {
            FieldType::Integer => value
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or_else(|_| Value::from(value)),
            FieldType::Number => value
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .unwrap_or_else(|| Value::from(value)),
            FieldType::Boolean if matches!(value, "true" | "false") => Value::Bool(value == "true"),
            _ => Value::from(value),
        }
    }
}

/// One field of a dataset's schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OpenField {
    /// Column name in the file (ASCII: letters, digits, `_`).
    pub name: String,
    /// Chinese title.
    pub title_zh: String,
    /// English title.
    pub title_en: String,
    /// Type.
    #[serde(rename = "type")]
    pub kind: FieldType,
    /// Unit of measure, if any (件, %, 天).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// A parsed CSV file: the header and the rows (every row as long as the header).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    /// Column names.
    pub header: Vec<String>,
    /// Rows.
    pub rows: Vec<Vec<String>>,
}

/// What is wrong with a file, for its column (or the file as a whole).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Issue {
    /// The column, when the issue is one column's.
    pub column: Option<String>,
    /// Stable code: `csv`, `empty`, `id_number`, `phone`, `name`, `columns`, `type`, `field`.
    pub code: &'static str,
    /// Chinese.
    pub zh: String,
    /// English.
    pub en: String,
}

impl Issue {
    fn file(code: &'static str, zh: String, en: String) -> Issue {
        Issue {
            column: None,
            code,
            zh,
            en,
        }
    }

    fn column(column: &str, code: &'static str, zh: String, en: String) -> Issue {
        Issue {
            column: Some(column.to_owned()),
            code,
            zh,
            en,
        }
    }
}

/// Parses a CSV file (UTF-8, a header line first, a byte-order mark allowed).
pub fn parse_csv(text: &str) -> Result<Table, Issue> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(text.as_bytes());
    let bad = |e: csv::Error| {
        Issue::file(
            "csv",
            format!("文件不是有效的 CSV：{e}"),
            format!("The file is not valid CSV: {e}"),
        )
    };
    let header: Vec<String> = reader
        .headers()
        .map_err(bad)?
        .iter()
        .map(|h| h.trim().to_owned())
        .collect();
    if header.is_empty() || header.iter().all(String::is_empty) {
        return Err(Issue::file(
            "empty",
            "文件没有表头。".into(),
            "The file has no header line.".into(),
        ));
    }
    let mut rows = Vec::new();
    for rec in reader.records() {
        let rec = rec.map_err(bad)?;
        if rows.len() == MAX_ROWS {
            return Err(Issue::file(
                "csv",
                format!("文件超过 {MAX_ROWS} 行。"),
                format!("The file has more than {MAX_ROWS} rows."),
            ));
        }
        rows.push(rec.iter().map(|v| v.trim().to_owned()).collect());
    }
    Ok(Table { header, rows })
}

/// Writes a table as CSV (RFC 4180, `\n` line ends).
pub fn to_csv(header: &[String], rows: &[Vec<String>]) -> String {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    // Writing to a Vec cannot fail.
    let _ = w.write_record(header);
    for r in rows {
        let _ = w.write_record(r);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

static PHONE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(\+?86[- ]?)?1[3-9]\d[- ]?\d{4}[- ]?\d{4}$").expect("phone pattern")
});
static NAME_LIKE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\p{Han}{2,4}$").expect("name pattern"));

/// The most common Chinese surnames (about 85% of the population).
const SURNAMES: &str = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘\
    于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付傅方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎\
    贺顾毛郝龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左\
    柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤\
    阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋\
    商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝";

/// Compound surnames that would otherwise be missed.
const COMPOUND_SURNAMES: [&str; 10] = [
    "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙",
];

/// Endings of organisation and place names, which are not people.
const NOT_PERSON_ENDINGS: [&str; 16] = [
    "局", "委", "厅", "办", "处", "科", "中心", "公司", "区", "市", "县", "旗", "镇", "村", "所",
    "院",
];

/// Headers that name a person (checked after lower-casing; `name` alone is not one, a
/// service or a place has a name too).
const NAME_HEADERS: [&str; 22] = [
    "姓名",
    "名字",
    "联系人",
    "申请人",
    "法定代表人",
    "法人代表",
    "负责人",
    "经办人",
    "person_name",
    "full_name",
    "fullname",
    "contact_name",
    "contact_person",
    "applicant",
    "applicant_name",
    "legal_representative",
    "surname",
    "given_name",
    "first_name",
    "last_name",
    "family_name",
    "xingming",
];

fn looks_like_person(v: &str) -> bool {
    if !NAME_LIKE.is_match(v) || NOT_PERSON_ENDINGS.iter().any(|e| v.ends_with(e)) {
        return false;
    }
    COMPOUND_SURNAMES.iter().any(|s| v.starts_with(s))
        || v.chars().next().is_some_and(|c| SURNAMES.contains(c))
}

fn header_names_person(header: &str, titles: &[&str]) -> bool {
    let h = header.trim().to_lowercase();
    NAME_HEADERS.contains(&h.as_str())
        || titles.iter().any(|t| {
            let t = t.trim();
            ["姓名", "联系人", "申请人", "法定代表人", "法人代表"]
                .iter()
                .any(|w| t.contains(w))
        })
}

/// Columns that hold personal data: resident ID numbers (any checksum-valid value),
/// mobile numbers (any value), personal names (by the header, or by values: at least
/// three, and at least half of the non-empty ones, look like a Chinese name). `titles`
/// are the schema's titles of each column, when there is a schema.
pub fn personal_columns(table: &Table, titles: &[Vec<&str>]) -> Vec<Issue> {
    let mut issues = Vec::new();
    for (i, col) in table.header.iter().enumerate() {
        let values = || {
            table
                .rows
                .iter()
                .filter_map(move |r| r.get(i))
                .map(String::as_str)
                .filter(|v| !v.is_empty())
        };
        if values().any(|v| ResidentId::parse(v).is_ok()) {
            issues.push(Issue::column(
                col,
                "id_number",
                format!("“{col}”列含有公民身份号码，不得开放。"),
                format!("Column “{col}” holds resident ID numbers and cannot be opened."),
            ));
            continue;
        }
        if values().any(|v| PHONE.is_match(v)) {
            issues.push(Issue::column(
                col,
                "phone",
                format!("“{col}”列含有手机号码，不得开放。"),
                format!("Column “{col}” holds mobile phone numbers and cannot be opened."),
            ));
            continue;
        }
        let t: &[&str] = titles.get(i).map(Vec::as_slice).unwrap_or(&[]);
        let non_empty = values().count();
        let distinct: HashSet<&str> = values().filter(|v| looks_like_person(v)).collect();
        let named = values().filter(|v| looks_like_person(v)).count();
        let by_values = distinct.len() >= 3 && named * 2 >= non_empty;
        if header_names_person(col, t) || by_values {
            issues.push(Issue::column(
                col,
                "name",
                format!("“{col}”列含有个人姓名，不得开放。"),
                format!("Column “{col}” holds personal names and cannot be opened."),
            ));
        }
    }
    issues
}

/// Whether a schema is well formed: names unique, ASCII identifiers, both titles given.
pub fn schema_issues(schema: &[OpenField]) -> Vec<Issue> {
    let mut issues = Vec::new();
    if schema.is_empty() {
        issues.push(Issue::file(
            "field",
            "数据结构至少要有一个字段。".into(),
            "The schema needs at least one field.".into(),
        ));
    }
    let mut seen = HashSet::new();
    for f in schema {
        let ok_name = !f.name.is_empty()
            && f.name.len() <= 64
            && f.name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
            && f.name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic());
        if !ok_name {
            issues.push(Issue::column(
                &f.name,
                "field",
                format!("字段名“{}”须以字母开头，只含字母、数字和下划线。", f.name),
                format!(
                    "Field name “{}” must start with a letter and hold only letters, digits and underscores.",
                    f.name
                ),
            ));
        }
        if !seen.insert(f.name.as_str()) {
            issues.push(Issue::column(
                &f.name,
                "field",
                format!("字段名“{}”重复。", f.name),
                format!("Field name “{}” appears twice.", f.name),
            ));
        }
        if f.title_zh.trim().is_empty() || f.title_en.trim().is_empty() {
            issues.push(Issue::column(
                &f.name,
                "field",
                format!("字段“{}”须有中文和英文名称。", f.name),
                format!("Field “{}” needs a Chinese and an English title.", f.name),
            ));
        }
    }
    issues
}

/// Whether the file matches the schema: the same columns in the same order, and every
/// non-empty value parses as its field's type (the first bad row is named).
pub fn schema_matches(schema: &[OpenField], table: &Table) -> Vec<Issue> {
    let names: Vec<&str> = schema.iter().map(|f| f.name.as_str()).collect();
    let header: Vec<&str> = table.header.iter().map(String::as_str).collect();
    if names != header {
        return vec![Issue::file(
            "columns",
            format!(
                "文件的列（{}）与数据结构的字段（{}）不一致。",
                header.join(", "),
                names.join(", ")
            ),
            format!(
                "The file's columns ({}) do not match the schema's fields ({}).",
                header.join(", "),
                names.join(", ")
            ),
        )];
    }
    let mut issues = Vec::new();
    for (i, f) in schema.iter().enumerate() {
        let bad = table.rows.iter().enumerate().find(|(_, r)| {
            r.get(i)
                .is_some_and(|v| !v.is_empty() && !f.kind.accepts(v))
        });
        if let Some((n, r)) = bad {
            let v = r.get(i).map(String::as_str).unwrap_or_default();
            let v: String = v.chars().take(40).collect();
            issues.push(Issue::column(
                &f.name,
                "type",
                format!(
                    "“{}”列第 {} 行的值“{v}”不是{}。",
                    f.name,
                    n + 1,
                    type_zh(f.kind)
                ),
                format!(
                    "Column “{}”, row {}: “{v}” is not a {}.",
                    f.name,
                    n + 1,
                    f.kind.code()
                ),
            ));
        }
    }
    issues
}

fn type_zh(t: FieldType) -> &'static str {
    match t {
        FieldType::String => "文本",
        FieldType::Integer => "整数",
        FieldType::Number => "数值",
        FieldType::Date => "日期（YYYY-MM-DD）",
        FieldType::Boolean => "布尔值（true/false）",
    }
}

/// Every check a file passes before publication, in order: CSV, schema well formed,
/// schema matches, no personal data.
pub fn check_file(schema: &[OpenField], csv_text: &str) -> Result<Table, Vec<Issue>> {
    let table = parse_csv(csv_text).map_err(|i| vec![i])?;
    let mut issues = schema_issues(schema);
    if issues.is_empty() {
        issues.extend(schema_matches(schema, &table));
    }
    let titles: Vec<Vec<&str>> = table
        .header
        .iter()
        .map(|h| {
            schema
                .iter()
                .find(|f| &f.name == h)
                .map(|f| vec![f.title_zh.as_str(), f.title_en.as_str()])
                .unwrap_or_default()
        })
        .collect();
    issues.extend(personal_columns(&table, &titles));
    if issues.is_empty() {
        Ok(table)
    } else {
        Err(issues)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &str, kind: FieldType) -> OpenField {
        OpenField {
            name: name.into(),
            title_zh: format!("{name}中"),
            title_en: name.into(),
            kind,
            unit: None,
        }
    }

    #[test]
    fn an_id_number_column_is_named() {
        let csv = "street,holder,count\n新华街,11010519491231002X,3\n中山路,,4\n";
        let schema = [
            field("street", FieldType::String),
            field("holder", FieldType::String),
            field("count", FieldType::Integer),
        ];
        let issues = check_file(&schema, csv).expect_err("refused");
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert_eq!(issues[0].code, "id_number");
        assert_eq!(issues[0].column.as_deref(), Some("holder"));
        assert!(issues[0].zh.contains("holder") && issues[0].en.contains("holder"));
    }

    #[test]
    fn an_invalid_check_digit_is_not_an_id_number() {
        // Same digits, wrong check character: an 18-digit code, not a person.
        let t = parse_csv("code\n110105194912310021\n").expect("ok");
        assert!(personal_columns(&t, &[]).is_empty());
    }

    #[test]
    fn phones_are_found_in_any_form() {
        for v in ["13912345678", "+86 139 1234 5678", "139-1234-5678"] {
            let t = parse_csv(&format!("tel\n{v}\n")).expect("ok");
            let i = personal_columns(&t, &[]);
            assert_eq!(i.len(), 1, "{v}");
            assert_eq!(i[0].code, "phone");
        }
        // A landline-like or too short number is not a mobile.
        let t = parse_csv("tel\n0471-1234567\n12345\n").expect("ok");
        assert!(personal_columns(&t, &[]).is_empty());
    }

    #[test]
    fn names_by_header_and_by_values() {
        let t = parse_csv("姓名,n\n,1\n").expect("ok");
        assert_eq!(personal_columns(&t, &[])[0].code, "name");
        let t = parse_csv("who,n\n王小明,1\n李华,2\n欧阳修,3\n张伟,4\n").expect("ok");
        let i = personal_columns(&t, &[]);
        assert_eq!(i.len(), 1);
        assert_eq!(i[0].column.as_deref(), Some("who"));
        // By the schema's title.
        let t = parse_csv("col_a\nx\n").expect("ok");
        assert_eq!(
            personal_columns(&t, &[vec!["联系人", "Contact"]])[0].code,
            "name"
        );
    }

    #[test]
    fn service_and_department_names_are_not_people() {
        let t = parse_csv(
            "name,department\n食品经营许可（新办）,市场监管局\n旅行社设立许可,文旅局\n社会保障卡申领,人社局\n\
             企业变更登记,市场监管局\n",
        )
        .expect("ok");
        assert!(personal_columns(&t, &[]).is_empty());
        // Two names are too few to call a column of names.
        let t = parse_csv("x\n王小明\n公共场所\n天气\n").expect("ok");
        assert!(personal_columns(&t, &[]).is_empty());
    }

    #[test]
    fn the_schema_must_match_the_file() {
        let schema = [
            field("month", FieldType::String),
            field("count", FieldType::Integer),
            field("share", FieldType::Number),
            field("day", FieldType::Date),
            field("ok", FieldType::Boolean),
        ];
        assert!(
            check_file(
                &schema,
                "month,count,share,day,ok\n2026-01,3,0.5,2026-01-02,true\n,,,,\n"
            )
            .is_ok()
        );
        let i = check_file(
            &schema,
            "month,count,share,day,ok\n2026-01,3.5,x,2026-13-01,yes\n",
        )
        .expect_err("refused");
        let cols: Vec<_> = i.iter().map(|i| i.column.clone().expect("ok")).collect();
        assert_eq!(cols, ["count", "share", "day", "ok"]);
        assert!(i.iter().all(|i| i.code == "type"));
        let i = check_file(&schema, "month,count\n2026-01,3\n").expect_err("refused");
        assert_eq!(i[0].code, "columns");
    }

    #[test]
    fn bad_schemas_and_files() {
        let mut f = field("1bad", FieldType::String);
        f.title_en.clear();
        let i = schema_issues(&[f.clone(), f]);
        assert_eq!(i.iter().filter(|i| i.code == "field").count(), 5);
        assert_eq!(parse_csv("a,b\n1\n").expect_err("refused").code, "csv");
        assert_eq!(parse_csv("").expect_err("refused").code, "empty");
        assert!(schema_issues(&[]).len() == 1);
    }

    #[test]
    fn csv_round_trip_and_json_cells() {
        let h = vec!["a".to_owned(), "b".to_owned()];
        let rows = vec![vec!["x,y".to_owned(), "\"q\"".to_owned()]];
        let t = parse_csv(&to_csv(&h, &rows)).expect("ok");
        assert_eq!(t.rows, rows);
        assert_eq!(FieldType::Integer.json("3"), serde_json::json!(3));
        assert_eq!(FieldType::Number.json("0.5"), serde_json::json!(0.5));
        assert_eq!(FieldType::Boolean.json("true"), serde_json::json!(true));
        assert_eq!(FieldType::String.json(""), serde_json::Value::Null);
    }
}

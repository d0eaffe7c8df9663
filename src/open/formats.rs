//! The open-data site's datasets in the formats existing tools read (pure): the CKAN
//! Action API's package, resource and organization dictionaries and its search; the
//! catalogue as DCAT (one RDF graph, written as JSON-LD and as Turtle); and each dataset
//! as a Frictionless Data Package.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use super::check::OpenField;
use super::{Licence, cycle, licence, topic};
use crate::domain::catalogue::Department;
use crate::store::open_data::OpenDataset;

/// The file formats a dataset is served in.
pub const FORMATS: [&str; 2] = ["csv", "json"];

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// CKAN's naive timestamps (`2026-01-02T03:04:05.000000`, UTC).
fn ckan_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

/// The dataset's schema, as stored.
pub fn schema(d: &OpenDataset) -> Vec<OpenField> {
    serde_json::from_value(d.schema.clone()).unwrap_or_default()
}

/// Where the site is, without a trailing slash.
pub fn base(public_url: &url::Url) -> String {
    public_url.as_str().trim_end_matches('/').to_owned()
}

/// A dataset's landing page.
pub fn landing(base: &str, d: &OpenDataset) -> String {
    format!("{base}/open/datasets/{}", d.id)
}

/// A dataset's file in one format.
pub fn file_url(base: &str, d: &OpenDataset, format: &str) -> String {
    format!("{base}/open/datasets/{}/data.{format}", d.id)
}

/// A department as a CKAN organization name (lower-case USCC).
pub fn org_name(uscc: &str) -> String {
    uscc.to_ascii_lowercase()
}

/// A CKAN organization dictionary.
pub fn ckan_organization(dept: &Department, package_count: usize) -> Value {
    let name = org_name(&dept.uscc);
    json!({
        "id": name,
        "name": name,
        "title": dept.name,
        "display_name": dept.name,
        "description": dept.name_en,
        "type": "organization",
        "is_organization": true,
        "state": "active",
        "approval_status": "approved",
        "image_url": "",
        "created": "2026-01-01T00:00:00.000000",
        "package_count": package_count,
    })
}

/// A CKAN resource dictionary: the dataset's file in one format.
pub fn ckan_resource(base: &str, d: &OpenDataset, format: &str) -> Value {
    let (mime, name_zh, name_en) = match format {
        "json" => ("application/json", "JSON 文件", "JSON file"),
        _ => ("text/csv", "CSV 文件", "CSV file"),
    };
    json!({
        "id": format!("{}-{format}", d.id),
        "package_id": d.id,
        "name": format!("{} {name_zh}", d.title_zh),
        "description": format!("{} ({name_en})", d.title_en),
        "url": file_url(base, d, format),
        "format": format.to_ascii_uppercase(),
        "mimetype": mime,
        "state": "active",
        "url_type": Value::Null,
        "created": ckan_time(d.created_at),
        "last_modified": ckan_time(d.refreshed_at.unwrap_or(d.modified_at)),
        "position": if format == "csv" { 0 } else { 1 },
    })
}

/// A CKAN package dictionary (`package_show`'s result).
pub fn ckan_package(base: &str, d: &OpenDataset, dept: Option<&Department>) -> Value {
    let lic = licence(&d.licence);
    let org = dept.map(|dp| ckan_organization(dp, 0));
    let t = topic(&d.topic);
    let extras = [
        ("title_en", d.title_en.clone()),
        ("description_en", d.description_en.clone()),
        ("update_cycle", d.update_cycle.clone()),
        ("topic", d.topic.clone()),
        (
            "datapackage",
            format!("{}/datapackage.json", landing(base, d)),
        ),
        ("resource_code", d.resource_code.clone().unwrap_or_default()),
    ];
    json!({
        "id": d.id,
        "name": d.id,
        "title": d.title_zh,
        "notes": d.description_zh,
        "type": "dataset",
        "state": "active",
        "private": false,
        "isopen": true,
        "license_id": lic.map(|l| l.code).unwrap_or(d.licence.as_str()),
        "license_title": lic.map(|l| l.title_en).unwrap_or(d.licence.as_str()),
        "license_url": lic.map(|l| l.url).unwrap_or(""),
        "url": landing(base, d),
        "owner_org": org_name(&d.department),
        "organization": org,
        "author": dept.map(|dp| dp.name.as_str()).unwrap_or(""),
        "maintainer": dept.map(|dp| dp.name.as_str()).unwrap_or(""),
        "metadata_created": ckan_time(d.published_at.unwrap_or(d.created_at)),
        "metadata_modified": ckan_time(d.refreshed_at.unwrap_or(d.modified_at)),
        "num_resources": FORMATS.len(),
        "num_tags": 1,
        "tags": [{ "name": d.topic, "display_name": t.map(|t| t.1).unwrap_or(&d.topic) }],
        "groups": [],
        "extras": extras.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>(),
        "resources": FORMATS.iter().map(|f| ckan_resource(base, d, f)).collect::<Vec<_>>(),
    })
}

/// `package_search`'s `fq`: space-separated `field:value` terms, all of which must
/// hold (`organization`, `owner_org`, `tags`, `res_format`, `name`, `license_id`); a
/// value may be quoted. An unknown field is an error (CKAN's search query error).
pub fn parse_fq(fq: &str) -> Result<Vec<(String, String)>, String> {
    let mut terms = Vec::new();
    let mut rest = fq.trim();
    while !rest.is_empty() {
        let Some((field, after)) = rest.split_once(':') else {
            return Err(format!("cannot parse fq term “{rest}”"));
        };
        let field = field.trim().trim_start_matches('+').to_owned();
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            match q.split_once('"') {
                Some((v, n)) => (v.to_owned(), n),
                None => return Err("unbalanced quote in fq".into()),
            }
        } else {
            match after.split_once(char::is_whitespace) {
                Some((v, n)) => (v.to_owned(), n),
                None => (after.to_owned(), ""),
            }
        };
        if !matches!(
            field.as_str(),
            "organization" | "owner_org" | "tags" | "res_format" | "name" | "license_id"
        ) {
            return Err(format!("unknown fq field “{field}”"));
        }
        terms.push((field, value));
        rest = next.trim();
    }
    Ok(terms)
}

/// Whether a dataset matches `q` (every word in its titles, descriptions, topic or
/// publisher) and the `fq` terms.
pub fn matches(
    d: &OpenDataset,
    dept: Option<&Department>,
    q: &str,
    fq: &[(String, String)],
) -> bool {
    let hay = [
        d.id.as_str(),
        &d.title_zh,
        &d.title_en,
        &d.description_zh,
        &d.description_en,
        &d.topic,
        dept.map(|x| x.name.as_str()).unwrap_or(""),
        dept.map(|x| x.name_en.as_str()).unwrap_or(""),
    ]
    .join(" ")
    .to_lowercase();
    let q_ok = q
        .split_whitespace()
        .filter(|w| *w != "*:*")
        .all(|w| hay.contains(&w.to_lowercase()));
    let fq_ok = fq.iter().all(|(f, v)| {
        let v = v.to_lowercase();
        match f.as_str() {
            "organization" | "owner_org" => org_name(&d.department) == v,
            "tags" => d.topic.to_lowercase() == v,
            "res_format" => FORMATS.contains(&v.as_str()),
            "name" => d.id == v,
            "license_id" => d.licence.to_lowercase() == v,
            _ => false,
        }
    });
    q_ok && fq_ok
}

/// The dataset as a Frictionless Data Package: one tabular-data-resource (the CSV file)
/// whose table schema has the dataset's fields and types.
pub fn datapackage(base: &str, d: &OpenDataset, dept: Option<&Department>) -> Value {
    let lic: Option<&Licence> = licence(&d.licence);
    let fields: Vec<Value> = schema(d)
        .iter()
        .map(|f| {
            let mut m = Map::new();
            m.insert("name".into(), json!(f.name));
            m.insert("type".into(), json!(f.kind.code()));
            m.insert("title".into(), json!(f.title_zh));
            let mut desc = f.title_en.clone();
            if let Some(u) = &f.unit {
                desc.push_str(&format!(" (unit: {u})"));
                m.insert("unit".into(), json!(u));
            }
            m.insert("description".into(), json!(desc));
            Value::Object(m)
        })
        .collect();
    json!({
        "profile": "tabular-data-package",
        "name": d.id,
        "id": landing(base, d),
        "title": d.title_zh,
        "description": format!("{}\n\n{} — {}", d.description_zh, d.title_en, d.description_en),
        "homepage": landing(base, d),
        "created": time(d.published_at.unwrap_or(d.created_at)),
        "keywords": [d.topic],
        "licenses": [{
            "name": lic.map(|l| l.code).unwrap_or(d.licence.as_str()),
            "path": lic.map(|l| l.url).unwrap_or(""),
            "title": lic.map(|l| l.title_en).unwrap_or(d.licence.as_str()),
        }],
        "contributors": [{
            "title": dept.map(|x| x.name.as_str()).unwrap_or(d.department.as_str()),
            "role": "publisher",
        }],
        "resources": [{
            "name": d.id,
            "path": file_url(base, d, "csv"),
            "profile": "tabular-data-resource",
            "format": "csv",
            "mediatype": "text/csv",
            "encoding": "utf-8",
            "title": d.title_zh,
            "schema": { "fields": fields },
        }],
    })
}

/// The JSON file: one object per row, each value typed by its field.
pub fn json_rows(d: &OpenDataset) -> Value {
    let fields = schema(d);
    let Ok(t) = super::check::parse_csv(&d.data_csv) else {
        return json!([]);
    };
    Value::Array(
        t.rows
            .iter()
            .map(|r| {
                let mut m = Map::new();
                for (i, f) in fields.iter().enumerate() {
                    let v = r.get(i).map(String::as_str).unwrap_or("");
                    m.insert(f.name.clone(), f.kind.json(v));
                }
                Value::Object(m)
            })
            .collect(),
    )
}

// ---- DCAT -------------------------------------------------------------------------

/// An RDF term in object position.
#[derive(Debug, Clone, PartialEq)]
pub enum Obj {
    /// An IRI.
    Iri(String),
    /// A literal with a language tag.
    Lang(String, &'static str),
    /// A typed literal (the datatype a prefixed name: `xsd:dateTime`).
    Typed(String, &'static str),
    /// A plain string.
    Plain(String),
}

/// One triple: subject IRI, predicate (prefixed name), object.
pub type Triple = (String, &'static str, Obj);

/// The prefixes the graph uses.
pub const PREFIXES: [(&str, &str); 5] = [
    ("dcat", "http://www.w3.org/ns/dcat#"),
    ("dct", "http://purl.org/dc/terms/"),
    ("foaf", "http://xmlns.com/foaf/0.1/"),
    ("xsd", "http://www.w3.org/2001/XMLSchema#"),
    ("rdf", "http://www.w3.org/1999/02/22-rdf-syntax-ns#"),
];

/// The catalogue of published datasets as DCAT triples.
pub fn dcat_graph(
    base: &str,
    datasets: &[OpenDataset],
    dept: impl Fn(&str) -> Option<Department>,
) -> Vec<Triple> {
    let mut g: Vec<Triple> = Vec::new();
    let cat = format!("{base}/open/catalog");
    let iri = |s: &str| Obj::Iri(s.to_owned());
    g.push((
        cat.clone(),
        "rdf:type",
        iri("http://www.w3.org/ns/dcat#Catalog"),
    ));
    g.push((
        cat.clone(),
        "dct:title",
        Obj::Lang("公共数据开放目录".into(), "zh"),
    ));
    g.push((
        cat.clone(),
        "dct:title",
        Obj::Lang("Open data catalogue".into(), "en"),
    ));
    g.push((cat.clone(), "foaf:homepage", iri(&format!("{base}/open"))));
    let mut orgs: Vec<String> = Vec::new();
    for d in datasets {
        let ds = landing(base, d);
        let org = format!("{base}/open/organizations/{}", org_name(&d.department));
        g.push((cat.clone(), "dcat:dataset", iri(&ds)));
        g.push((
            ds.clone(),
            "rdf:type",
            iri("http://www.w3.org/ns/dcat#Dataset"),
        ));
        g.push((ds.clone(), "dct:identifier", Obj::Plain(d.id.clone())));
        g.push((ds.clone(), "dct:title", Obj::Lang(d.title_zh.clone(), "zh")));
        g.push((ds.clone(), "dct:title", Obj::Lang(d.title_en.clone(), "en")));
        if !d.description_zh.is_empty() {
            g.push((
                ds.clone(),
                "dct:description",
                Obj::Lang(d.description_zh.clone(), "zh"),
            ));
        }
        if !d.description_en.is_empty() {
            g.push((
                ds.clone(),
                "dct:description",
                Obj::Lang(d.description_en.clone(), "en"),
            ));
        }
        g.push((ds.clone(), "dct:publisher", iri(&org)));
        g.push((ds.clone(), "dcat:keyword", Obj::Plain(d.topic.clone())));
        if let Some(t) = topic(&d.topic) {
            g.push((ds.clone(), "dcat:theme", iri(t.3)));
        }
        g.push((ds.clone(), "dcat:landingPage", iri(&ds)));
        g.push((
            ds.clone(),
            "dct:issued",
            Obj::Typed(time(d.published_at.unwrap_or(d.created_at)), "xsd:dateTime"),
        ));
        g.push((
            ds.clone(),
            "dct:modified",
            Obj::Typed(
                time(d.refreshed_at.unwrap_or(d.modified_at)),
                "xsd:dateTime",
            ),
        ));
        if let Some(c) = cycle(&d.update_cycle) {
            g.push((ds.clone(), "dct:accrualPeriodicity", iri(c.3)));
        }
        let lic = licence(&d.licence).map(|l| l.url.to_owned());
        for f in FORMATS {
            let dist = format!("{ds}#{f}");
            let url = file_url(base, d, f);
            g.push((ds.clone(), "dcat:distribution", iri(&dist)));
            g.push((
                dist.clone(),
                "rdf:type",
                iri("http://www.w3.org/ns/dcat#Distribution"),
            ));
            g.push((
                dist.clone(),
                "dct:title",
                Obj::Plain(format!("{} ({})", d.title_en, f.to_ascii_uppercase())),
            ));
            g.push((dist.clone(), "dcat:accessURL", iri(&ds)));
            g.push((dist.clone(), "dcat:downloadURL", iri(&url)));
            let mt = if f == "csv" {
                "text/csv"
            } else {
                "application/json"
            };
            g.push((
                dist.clone(),
                "dcat:mediaType",
                iri(&format!("http://www.iana.org/assignments/media-types/{mt}")),
            ));
            g.push((
                dist.clone(),
                "dct:format",
                Obj::Plain(f.to_ascii_uppercase()),
            ));
            if let Some(l) = &lic {
                g.push((dist.clone(), "dct:license", iri(l)));
            }
        }
        if !orgs.contains(&org) {
            orgs.push(org.clone());
            g.push((
                org.clone(),
                "rdf:type",
                iri("http://xmlns.com/foaf/0.1/Organization"),
            ));
            if let Some(dp) = dept(&d.department) {
                g.push((org.clone(), "foaf:name", Obj::Lang(dp.name.clone(), "zh")));
                g.push((
                    org.clone(),
                    "foaf:name",
                    Obj::Lang(dp.name_en.clone(), "en"),
                ));
            }
            g.push((
                org.clone(),
                "dct:identifier",
                Obj::Plain(d.department.clone()),
            ));
        }
    }
    g
}

fn turtle_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn turtle_iri(s: &str) -> String {
    let mut out = String::from("<");
    for c in s.chars() {
        match c {
            '<' | '>' | '"' | '{' | '}' | '|' | '^' | '`' | '\\' | ' ' => {
                out.push_str(&format!("%{:02X}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('>');
    out
}

/// The graph as Turtle, one subject block each, in the order subjects first appear.
pub fn turtle(g: &[Triple]) -> String {
    let mut out = String::new();
    for (p, ns) in PREFIXES {
        out.push_str(&format!("@prefix {p}: <{ns}> .\n"));
    }
    let mut subjects: Vec<&str> = Vec::new();
    for (s, _, _) in g {
        if !subjects.contains(&s.as_str()) {
            subjects.push(s);
        }
    }
    for s in subjects {
        out.push('\n');
        out.push_str(&turtle_iri(s));
        let rows: Vec<String> = g
            .iter()
            .filter(|(x, _, _)| x == s)
            .map(|(_, p, o)| {
                let o = match o {
                    Obj::Iri(i) => turtle_iri(i),
                    Obj::Lang(v, l) => format!("{}@{l}", turtle_string(v)),
                    Obj::Typed(v, t) => format!("{}^^{t}", turtle_string(v)),
                    Obj::Plain(v) => turtle_string(v),
                };
                format!("    {p} {o}")
            })
            .collect();
        out.push('\n');
        out.push_str(&rows.join(" ;\n"));
        out.push_str(" .\n");
    }
    out
}

/// The graph as JSON-LD: a `@context` of the prefixes and one node object per subject.
pub fn jsonld(g: &[Triple]) -> Value {
    let mut context = Map::new();
    for (p, ns) in PREFIXES {
        context.insert(p.into(), json!(ns));
    }
    let mut nodes: Vec<(String, Map<String, Value>)> = Vec::new();
    for (s, p, o) in g {
        let idx = match nodes.iter().position(|(x, _)| x == s) {
            Some(i) => i,
            None => {
                let mut m = Map::new();
                m.insert("@id".into(), json!(s));
                nodes.push((s.clone(), m));
                nodes.len() - 1
            }
        };
        let node = &mut nodes[idx].1;
        let (key, val) = if *p == "rdf:type" {
            let Obj::Iri(t) = o else { continue };
            ("@type".to_owned(), json!(t))
        } else {
            (
                (*p).to_owned(),
                match o {
                    Obj::Iri(i) => json!({ "@id": i }),
                    Obj::Lang(v, l) => json!({ "@value": v, "@language": l }),
                    Obj::Typed(v, t) => json!({ "@value": v, "@type": t }),
                    Obj::Plain(v) => json!(v),
                },
            )
        };
        match node.get_mut(&key) {
            Some(Value::Array(a)) => a.push(val),
            Some(_) => {}
            None => {
                node.insert(key, Value::Array(vec![val]));
            }
        }
    }
    json!({
        "@context": context,
        "@graph": nodes.into_iter().map(|(_, m)| Value::Object(m)).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ds(id: &str, topic: &str, dept: &str) -> OpenDataset {
        let now = Utc::now();
        OpenDataset {
            id: id.into(),
            title_zh: format!("{id} 标题"),
            title_en: format!("{id} title"),
            description_zh: "说明 \"引号\"\n第二行".into(),
            description_en: "About".into(),
            topic: topic.into(),
            department: dept.into(),
            licence: "cc-by-4.0".into(),
            update_cycle: "monthly".into(),
            source: "upload".into(),
            resource_code: None,
            schema: json!([{"name": "n", "title_zh": "数", "title_en": "N", "type": "integer", "unit": "件"}]),
            data_csv: "n\n1\n\n".into(),
            row_count: 1,
            status: "published".into(),
            return_reason: None,
            created_by: "seed".into(),
            created_at: now,
            modified_at: now,
            published_at: Some(now),
            refreshed_at: Some(now),
        }
    }

    #[test]
    fn fq_terms() {
        assert_eq!(
            parse_fq("organization:abc tags:\"x y\"").expect("ok"),
            vec![
                ("organization".into(), "abc".into()),
                ("tags".into(), "x y".into())
            ]
        );
        assert!(parse_fq("colour:red").is_err());
        assert!(parse_fq("nocolon").is_err());
        assert!(parse_fq("").expect("ok").is_empty());
    }

    #[test]
    fn search_by_words_and_filters() {
        let a = ds("cases", "government", "11150700MB1530001X");
        assert!(matches(&a, None, "CASES title", &[]));
        assert!(matches(&a, None, "*:*", &[]));
        assert!(!matches(&a, None, "weather", &[]));
        let fq =
            parse_fq("organization:11150700mb1530001x tags:government res_format:CSV").expect("ok");
        assert!(matches(&a, None, "", &fq));
        let fq = parse_fq("organization:other").expect("ok");
        assert!(!matches(&a, None, "", &fq));
    }

    #[test]
    fn package_and_datapackage_carry_the_schema() {
        let d = ds("cases", "government", "X1");
        let p = ckan_package("http://h", &d, None);
        assert_eq!(
            p["resources"][0]["url"],
            "http://h/open/datasets/cases/data.csv"
        );
        assert_eq!(p["owner_org"], "x1");
        let dp = datapackage("http://h", &d, None);
        assert_eq!(dp["resources"][0]["schema"]["fields"][0]["type"], "integer");
        assert_eq!(dp["resources"][0]["profile"], "tabular-data-resource");
        assert_eq!(json_rows(&d), json!([{"n": 1}]));
    }

    #[test]
    fn turtle_escapes_and_jsonld_groups() {
        let d = ds("cases", "government", "X1");
        let g = dcat_graph("http://h", &[d], |_| None);
        let ttl = turtle(&g);
        assert!(ttl.contains("\"说明 \\\"引号\\\"\\n第二行\"@zh"), "{ttl}");
        assert!(
            ttl.contains(
                "<http://h/open/catalog>\n    rdf:type <http://www.w3.org/ns/dcat#Catalog>"
            )
        );
        let j = jsonld(&g);
        let nodes = j["@graph"].as_array().expect("ok");
        // Catalogue, dataset, two distributions, publisher.
        assert_eq!(nodes.len(), 5);
        assert_eq!(nodes[1]["dct:title"].as_array().expect("ok").len(), 2);
    }
}

//! The OpenAPI documents: drawn from the router, snapshot-tested, and true of the real
//! answers.
//!
//! - The whole document (`/api/openapi.json`) and the department one
//!   (`/api/dept/v1/openapi.json`) are insta snapshots (`tests/it/snapshots/`), so every
//!   change to them shows in review. Accept a change with `cargo insta review`, or by
//!   running the test once with `INSTA_UPDATE=always` and reading the diff.
//! - The whole document tags every operation with its caller, leaves out the pages and
//!   the login redirects, and its department part is the department document.
//! - The department document keeps what integrators rely on: the routes with their
//!   methods and scopes, the transition body, the push contract.
//! - Real answers of a gateway on port 0, for every documented operation, are validated
//!   with the `jsonschema` crate against the schema the document gives for their status
//!   and media type. A property the schema does not name is an error too.

use std::collections::{BTreeMap, BTreeSet};

use chrono::Utc;
use onewindow::auth::tokens;
use onewindow::http::openapi;
use onewindow::store::ApiToken;
use reqwest::{Method, RequestBuilder};
use serde_json::{Map, Value, json};

use crate::backend_tests;
use crate::cases::{SSC, Session, jpeg, valid_values};
use crate::harness::{Backend, TestApp};
use crate::login::{LoginSetup, with_dev_idp};

backend_tests!(
    answers_to_people_match_the_document,
    answers_to_departments_match_the_document,
);

const HRSS: &str = "11150700MB15300034";
/// 食品经营许可（新办）: an enterprise applies; its e-licences stand in for materials.
const FOOD: &str = "11150700MB1530001X-XK-0003";

/// Every department route and its methods.
const ROUTES: [(&str, &[&str]); 11] = [
    ("/api/dept/v1/whoami", &["get"]),
    ("/api/dept/v1/departments/{uscc}/services", &["get"]),
    ("/api/dept/v1/cases", &["get"]),
    ("/api/dept/v1/cases/{case_no}", &["get"]),
    ("/api/dept/v1/cases/{case_no}/transitions", &["post"]),
    (
        "/api/dept/v1/cases/{case_no}/materials/{upload_id}",
        &["get"],
    ),
    ("/api/dept/v1/inbox", &["get"]),
    ("/api/dept/v1/inbox/{event_id}/ack", &["post"]),
    ("/.well-known/jwks.json", &["get"]),
    ("/api/dept/v1/openapi.json", &["get"]),
    ("/api/dept/v1/data/{resource}", &["post"]),
];

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

const CALLERS: [&str; 6] = [
    "public",
    "citizen",
    "staff",
    "operator",
    "department",
    "probes",
];

// ---- the documents as documents ------------------------------------------------------

#[test]
fn the_documents_match_their_snapshots() {
    insta::assert_json_snapshot!("api", openapi::api_document());
    insta::assert_json_snapshot!("department", openapi::department_document());
}

async fn fetch(app: &TestApp, path: &str) -> Value {
    let resp = app.get(path, None).await;
    assert_eq!(resp.status(), 200);
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert!(ct.starts_with("application/json"), "{ct}");
    resp.json().await.expect("json")
}

/// Follows a `#/components/schemas/…` reference (repeatedly).
fn resolve<'a>(doc: &'a Value, mut schema: &'a Value) -> &'a Value {
    for _ in 0..16 {
        let Some(r) = schema.get("$ref").and_then(Value::as_str) else {
            return schema;
        };
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("not a schema reference: {r}"));
        schema = &doc["components"]["schemas"][name];
        assert!(!schema.is_null(), "dangling {r}");
    }
    panic!("reference loop");
}

/// Every `$ref` anywhere in `v`, with where it was found.
fn refs(v: &Value, at: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "$ref"
                    && let Some(r) = x.as_str()
                {
                    out.push((at.to_owned(), r.to_owned()));
                }
                refs(x, &format!("{at}/{k}"), out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                refs(x, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// Asserts every reference of a document resolves to one of its schemas.
fn every_reference_resolves(doc: &Value) {
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    let mut found = Vec::new();
    refs(doc, "#", &mut found);
    assert!(found.len() > 20, "references are used");
    for (at, r) in found {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("{at}: {r} is not a schema reference"));
        assert!(
            schemas.contains_key(name),
            "{at}: {r} does not resolve in components.schemas"
        );
    }
}

/// The enum values of a (possibly nullable, possibly referenced) string schema.
fn enum_values(doc: &Value, schema: &Value) -> BTreeSet<String> {
    let s = resolve(doc, schema);
    if let Some(e) = s.get("enum").and_then(Value::as_array) {
        return e
            .iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect();
    }
    for k in ["oneOf", "anyOf"] {
        if let Some(alts) = s.get(k).and_then(Value::as_array) {
            return alts.iter().flat_map(|a| enum_values(doc, a)).collect();
        }
    }
    BTreeSet::new()
}

fn set(xs: &[&str]) -> BTreeSet<String> {
    xs.iter().map(|x| x.to_string()).collect()
}

/// Every operation of a document: (path, method) → operation.
fn operations(doc: &Value) -> BTreeMap<(String, String), &Value> {
    let mut out = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for m in METHODS {
            if let Some(op) = item.get(m) {
                out.insert((path.clone(), m.to_owned()), op);
            }
        }
    }
    out
}

#[tokio::test]
async fn the_whole_document_groups_every_json_route_by_caller() {
    let app = TestApp::spawn(Backend::SqliteMemory).await;
    let doc = fetch(&app, "/api/openapi.json").await;
    let version = doc["openapi"].as_str().expect("openapi");
    assert!(version.starts_with("3.1."), "OpenAPI {version}");
    assert_eq!(doc["info"]["title"], openapi::API_TITLE);
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        doc["servers"][0]["url"],
        app.state
            .settings
            .server
            .public_url
            .as_str()
            .trim_end_matches('/')
    );
    let tags: Vec<&str> = doc["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(tags, CALLERS);

    let ops = operations(&doc);
    let mut ids = BTreeSet::new();
    let mut by_caller: BTreeMap<&str, usize> = BTreeMap::new();
    for ((path, method), op) in &ops {
        // pages and login redirects are not JSON routes
        assert!(
            path.starts_with("/api/")
                || ["/.well-known/jwks.json", "/healthz", "/readyz", "/metrics"]
                    .contains(&path.as_str())
                // the open-data site's machine-readable files (DCAT, data packages)
                || ["/open/catalog.jsonld", "/open/catalog.ttl", "/open/datasets/{id}/{file}"]
                    .contains(&path.as_str()),
            "{method} {path} is not a JSON route"
        );
        let tags = op["tags"].as_array().expect("tags");
        assert_eq!(tags.len(), 1, "{method} {path}: one caller, got {tags:?}");
        let caller = tags[0].as_str().expect("tag");
        assert!(CALLERS.contains(&caller), "{method} {path}: {caller}");
        *by_caller.entry(caller).or_default() += 1;
        let id = op["operationId"].as_str().expect("operationId");
        assert!(ids.insert(id), "operationId {id} is used twice");
        // who must log in says how
        let scheme = op["security"][0]
            .as_object()
            .map(|s| s.keys().cloned().collect::<Vec<_>>());
        match caller {
            "citizen" | "staff" | "operator" => {
                assert_eq!(scheme, Some(vec!["session".to_owned()]), "{method} {path}");
                assert!(op["responses"]["401"].is_object(), "{method} {path} 401");
            }
            "public" | "probes" => assert_eq!(scheme, None, "{method} {path}"),
            _ => {}
        }
    }
    for caller in CALLERS {
        assert!(by_caller.contains_key(caller), "no {caller} operation");
    }
    assert!(doc["paths"]["/api/openapi.json"]["get"].is_object());
    every_reference_resolves(&doc);

    // The department document is the department part of the whole one, with its own tags.
    let dept = fetch(&app, "/api/dept/v1/openapi.json").await;
    let dept_ops = operations(&dept);
    let whole_dept: BTreeSet<&(String, String)> = ops
        .iter()
        .filter(|(_, op)| op["tags"][0] == "department")
        .map(|(k, _)| k)
        .collect();
    assert_eq!(whole_dept, dept_ops.keys().collect());
    for (key, op) in &dept_ops {
        let mut a = (*op).clone();
        let mut b = ops[key].clone();
        a.as_object_mut().expect("op").remove("tags");
        b.as_object_mut().expect("op").remove("tags");
        assert_eq!(a, b, "{key:?} differs between the documents");
    }
    assert_eq!(
        dept["components"]["securitySchemes"]["bearerAuth"],
        doc["components"]["securitySchemes"]["bearerAuth"]
    );
}

#[tokio::test]
async fn the_document_describes_every_department_route() {
    let app = TestApp::spawn(Backend::SqliteMemory).await;
    let doc = fetch(&app, "/api/dept/v1/openapi.json").await;

    let version = doc["openapi"].as_str().expect("openapi");
    assert!(version.starts_with("3.1."), "OpenAPI {version}");
    assert_eq!(doc["info"]["title"], "onewindow department API / 部门接口");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    let description = doc["info"]["description"].as_str().expect("description");
    for needle in [
        "owt_",
        "onewindow token create",
        "cases:read",
        "cases:write",
        "inbox",
        "materials:read",
        "data:read",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "v1a,",
        "application/cloudevents+json",
        "/.well-known/jwks.json",
        "5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h and 24 h",
    ] {
        assert!(description.contains(needle), "description lacks {needle:?}");
    }
    assert_eq!(
        doc["servers"][0]["url"],
        app.state
            .settings
            .server
            .public_url
            .as_str()
            .trim_end_matches('/')
    );

    // every department route, with exactly its methods, and nothing else
    let paths = doc["paths"].as_object().expect("paths");
    assert_eq!(
        paths.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        ROUTES.iter().map(|r| r.0).collect()
    );
    for (path, methods) in ROUTES {
        let item = paths.get(path).unwrap_or_else(|| panic!("{path} missing"));
        let documented: BTreeSet<String> = METHODS
            .iter()
            .filter(|m| item.get(**m).is_some())
            .map(|m| m.to_string())
            .collect();
        assert_eq!(documented, set(methods), "{path}");
    }
    let tags: BTreeSet<&str> = doc["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(
        tags,
        [
            "account",
            "cases",
            "materials",
            "inbox",
            "keys",
            "meta",
            "data"
        ]
        .into_iter()
        .collect()
    );

    // bearerAuth, and the scope each operation needs
    let scheme = &doc["components"]["securitySchemes"]["bearerAuth"];
    assert_eq!(scheme["type"], "http");
    assert_eq!(scheme["scheme"], "bearer");
    let needs = |path: &str, method: &str| -> Option<Vec<String>> {
        let sec = doc["paths"][path][method]["security"].as_array()?;
        let scopes = sec.first()?.get("bearerAuth")?.as_array()?;
        Some(
            scopes
                .iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect(),
        )
    };
    assert_eq!(needs("/api/dept/v1/whoami", "get"), Some(vec![]));
    assert_eq!(
        needs("/api/dept/v1/cases", "get"),
        Some(vec!["cases:read".to_owned()])
    );
    assert_eq!(
        needs("/api/dept/v1/cases/{case_no}/transitions", "post"),
        Some(vec!["cases:write".to_owned()])
    );
    assert_eq!(
        needs("/api/dept/v1/cases/{case_no}/materials/{upload_id}", "get"),
        Some(vec!["materials:read".to_owned()])
    );
    assert_eq!(
        needs("/api/dept/v1/inbox/{event_id}/ack", "post"),
        Some(vec!["inbox".to_owned()])
    );
    assert_eq!(
        needs("/api/dept/v1/data/{resource}", "post"),
        Some(vec!["data:read".to_owned()])
    );
    assert_eq!(needs("/.well-known/jwks.json", "get"), None, "public");
    assert_eq!(needs("/api/dept/v1/openapi.json", "get"), None, "public");

    // every authenticated operation answers 401 and 403 with a problem document, and
    // every error it documents is problem+json
    let public = ["/.well-known/jwks.json", "/api/dept/v1/openapi.json"];
    for (path, methods) in ROUTES {
        for m in methods {
            let op = &doc["paths"][path][*m];
            let responses = op["responses"].as_object().expect("responses");
            if !public.contains(&path) {
                assert!(responses.contains_key("401"), "{m} {path} 401");
            }
            if !public.contains(&path) && path != "/api/dept/v1/whoami" {
                assert!(responses.contains_key("403"), "{m} {path} 403");
            }
            for (code, r) in responses {
                let code: u16 = code.parse().expect("status");
                let problem = &r["content"]["application/problem+json"]["schema"];
                if code >= 400 && !problem.is_null() {
                    assert_eq!(problem["$ref"], "#/components/schemas/Problem");
                }
                // (400 may be axum's own plain-text answer to a malformed query)
                if code > 400 {
                    assert!(!problem.is_null(), "{m} {path} {code} is not a problem");
                }
            }
        }
    }
    let ack = &doc["paths"]["/api/dept/v1/inbox/{event_id}/ack"]["post"]["responses"];
    assert!(ack["204"].is_object() && ack["404"].is_object());
    let codes: BTreeSet<&str> =
        doc["paths"]["/api/dept/v1/cases/{case_no}/transitions"]["post"]["responses"]
            .as_object()
            .expect("responses")
            .keys()
            .map(String::as_str)
            .collect();
    assert_eq!(
        codes,
        [
            "200", "400", "401", "403", "404", "409", "413", "422", "429"
        ]
        .into_iter()
        .collect()
    );

    // the transition: path parameter, Idempotency-Key header, the body's enums
    let op = &doc["paths"]["/api/dept/v1/cases/{case_no}/transitions"]["post"];
    let params = op["parameters"].as_array().expect("parameters");
    let param = |name: &str, place: &str| {
        params
            .iter()
            .find(|p| p["name"].as_str() == Some(name) && p["in"] == place)
            .cloned()
    };
    assert!(param("case_no", "path").is_some_and(|p| p["required"] == true));
    let key = param("Idempotency-Key", "header").expect("Idempotency-Key header");
    assert_ne!(key["required"], true, "Idempotency-Key is optional");
    let body = resolve(
        &doc,
        &op["requestBody"]["content"]["application/json"]["schema"],
    );
    assert_eq!(body["required"], json!(["action"]));
    assert_eq!(
        enum_values(&doc, &body["properties"]["action"]),
        set(&[
            "accept",
            "not_accept",
            "request_correction",
            "start_review",
            "suspend",
            "resume",
            "conclude",
        ]),
    );
    assert_eq!(
        enum_values(&doc, &body["properties"]["result"]),
        set(&["approved", "rejected"])
    );
    assert!(body["properties"]["note"].is_object());
    assert_eq!(
        body["additionalProperties"], false,
        "unknown fields refused"
    );

    // the list's and the inbox's query parameters
    let names = |path: &str| -> BTreeSet<String> {
        doc["paths"][path]["get"]["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .filter(|p| p["in"] == "query")
            .filter_map(|p| p["name"].as_str().map(str::to_owned))
            .collect()
    };
    assert_eq!(
        names("/api/dept/v1/cases"),
        set(&["status", "updated_since", "page", "per_page", "before"])
    );
    assert_eq!(names("/api/dept/v1/inbox"), set(&["limit"]));
    let limit = &doc["paths"]["/api/dept/v1/inbox"]["get"]["parameters"][0]["schema"];
    assert_eq!(
        (limit["minimum"].as_i64(), limit["maximum"].as_i64()),
        (Some(1), Some(100))
    );
    assert_eq!(limit["default"], 10);

    // the event envelope and its data
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    for name in [
        "Problem",
        "CaseSummary",
        "CaseDetail",
        "TransitionAnswer",
        "InboxPage",
        "CloudEvent",
        "CaseEventData",
        "Jwks",
    ] {
        assert!(schemas.contains_key(name), "schema {name}");
    }
    let event = &schemas["CloudEvent"];
    for attr in [
        "specversion",
        "id",
        "source",
        "type",
        "subject",
        "time",
        "datacontenttype",
        "data",
    ] {
        assert!(event["properties"][attr].is_object(), "CloudEvent.{attr}");
    }
    assert_eq!(enum_values(&doc, &event["properties"]["type"]).len(), 10);
    let problem = &schemas["Problem"]["properties"];
    for field in ["type", "title", "status", "detail", "request_id", "errors"] {
        assert!(problem[field].is_object(), "Problem.{field}");
    }
    every_reference_resolves(&doc);
}

// ---- real answers against the document ------------------------------------------------

/// Marks a schema that shares its instance with the schema that refers to it (an `allOf`,
/// `oneOf` or `anyOf` member): it must not refuse the properties its siblings name.
const OPEN: &str = "__open";

/// A copy of `schema` that refuses undocumented properties. Every object schema that is
/// not a member of a composition gets `unevaluatedProperties: false`, which (unlike
/// `additionalProperties`) sees the properties its `allOf`/`oneOf` members and their
/// references evaluated. Members refer to the open variant of a component.
fn strict(schema: &Value, open: bool) -> Value {
    let Value::Object(m) = schema else {
        return schema.clone();
    };
    let mut m = m.clone();
    if open && let Some(Value::String(r)) = m.get_mut("$ref") {
        r.push_str(OPEN);
    }
    for k in ["allOf", "oneOf", "anyOf"] {
        if let Some(Value::Array(members)) = m.get_mut(k) {
            for x in members.iter_mut() {
                *x = strict(x, true);
            }
        }
    }
    if let Some(Value::Object(props)) = m.get_mut("properties") {
        for v in props.values_mut() {
            *v = strict(v, false);
        }
    }
    for k in ["items", "additionalProperties"] {
        if let Some(v @ Value::Object(_)) = m.get_mut(k) {
            *v = strict(v, false);
        }
    }
    let composite = ["properties", "allOf", "oneOf", "anyOf"]
        .iter()
        .any(|k| m.contains_key(*k));
    if composite && !open && !m.contains_key("additionalProperties") {
        m.insert("unevaluatedProperties".into(), Value::Bool(false));
    }
    Value::Object(m)
}

/// The document with every schema made strict (components in both variants).
fn strict_document(doc: &Value) -> Value {
    let mut doc = doc.clone();
    let mut schemas = Map::new();
    for (name, s) in doc["components"]["schemas"].as_object().expect("schemas") {
        schemas.insert(name.clone(), strict(s, false));
        schemas.insert(format!("{name}{OPEN}"), strict(s, true));
    }
    doc["components"]["schemas"] = Value::Object(schemas);
    for item in doc["paths"].as_object_mut().expect("paths").values_mut() {
        for m in METHODS {
            let Some(responses) = item
                .get_mut(m)
                .and_then(|op| op.get_mut("responses"))
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            for r in responses.values_mut() {
                if let Some(content) = r.get_mut("content").and_then(Value::as_object_mut) {
                    for media in content.values_mut() {
                        if let Some(s) = media.get_mut("schema") {
                            *s = strict(s, false);
                        }
                    }
                }
            }
        }
    }
    doc
}

/// Sends requests, checks each answer against the served document, and remembers which
/// operations were exercised.
struct Checker {
    doc: Value,
    exercised: BTreeSet<(String, String)>,
    errors: Vec<String>,
}

impl Checker {
    async fn new(app: &TestApp) -> Checker {
        Checker {
            doc: strict_document(&fetch(app, "/api/openapi.json").await),
            exercised: BTreeSet::new(),
            errors: Vec::new(),
        }
    }

    /// Sends `req` (to the route `template`), asserts its status, checks the answer
    /// against the document, and returns the body (JSON, text as a string, or null).
    async fn answer(&mut self, template: &str, status: u16, req: RequestBuilder) -> Value {
        let (client, req) = req.build_split();
        let req = req.expect("request");
        let method = req.method().as_str().to_owned();
        let path = req.url().path().to_owned();
        let resp = client.execute(req).await.expect("send");
        let got = resp.status().as_u16();
        let media = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_owned();
        let bytes = resp.bytes().await.expect("body");
        let body = if media.ends_with("json") {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        } else if media.starts_with("text/") {
            Value::String(String::from_utf8_lossy(&bytes).into_owned())
        } else {
            Value::Null
        };
        assert_eq!(got, status, "{method} {path}: {body}");
        let at = format!("{method} {template} {status}");
        let key = (method.clone(), template.to_owned());
        let op = &self.doc["paths"][template][method.to_lowercase()];
        if op.is_null() {
            self.errors
                .push(format!("{method} {template} is served but not documented"));
            return body;
        }
        self.exercised.insert(key);
        let response = &op["responses"][status.to_string()];
        if response.is_null() {
            self.errors.push(format!("{at}: status not documented"));
            return body;
        }
        let Some(content) = response["content"].as_object().filter(|c| !c.is_empty()) else {
            if !bytes.is_empty() {
                self.errors
                    .push(format!("{at}: a body where the document describes none"));
            }
            return body;
        };
        let Some(documented) = content.get(&media) else {
            let known: Vec<&String> = content.keys().collect();
            self.errors
                .push(format!("{at}: answered {media:?}, documented {known:?}"));
            return body;
        };
        let Some(schema) = documented.get("schema") else {
            return body;
        };
        self.validate(&at, schema.clone(), &body);
        body
    }

    fn validate(&mut self, at: &str, schema: Value, body: &Value) {
        let mut root = schema;
        root["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
        root["components"] = self.doc["components"].clone();
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .build(&root)
            .unwrap_or_else(|e| panic!("{at}: the schema does not compile: {e}"));
        for e in validator.iter_errors(body) {
            self.errors.push(format!("{at}: {} {e}", e.instance_path()));
        }
    }

    /// Asserts every answer fitted the document and every documented operation of
    /// `callers` was exercised.
    fn finish(self, callers: &[&str]) {
        let mut missing = Vec::new();
        for ((path, method), op) in operations(&self.doc) {
            let caller = op["tags"][0].as_str().unwrap_or("");
            let key = (method.to_uppercase(), path.clone());
            if callers.contains(&caller) && !self.exercised.contains(&key) {
                missing.push(format!("{} {path}", key.0));
            }
        }
        assert!(
            missing.is_empty(),
            "documented but never called here: {missing:?}"
        );
        assert!(
            self.errors.is_empty(),
            "answers differ from the document:\n{}",
            self.errors.join("\n")
        );
    }
}

fn anon(app: &TestApp, method: Method, path: &str) -> RequestBuilder {
    app.client.request(method, app.url(path))
}

fn as_user(s: &Session, method: Method, path: &str) -> RequestBuilder {
    s.b.client
        .request(method, format!("{}{path}", s.base))
        .header("accept", "application/json")
        .header("x-csrf-token", &s.csrf)
}

fn upload(s: &Session, name: &str) -> RequestBuilder {
    let part = reqwest::multipart::Part::bytes(jpeg(5)).file_name(name.to_owned());
    as_user(s, Method::POST, "/api/v1/uploads")
        .multipart(reqwest::multipart::Form::new().part("file", part))
}

async fn answers_to_people_match_the_document(b: Backend) {
    let s = with_dev_idp(b, &[("worker_in_serve", "false")]).await;
    let app = &s.app;
    let mut c = Checker::new(app).await;
    let (get, post, put, delete) = (Method::GET, Method::POST, Method::PUT, Method::DELETE);

    // public, in both languages, for every service of the catalogue
    for lang in ["zh-CN", "en"] {
        let call = |path: &str| anon(app, Method::GET, path).header("accept-language", lang);
        c.answer("/api/v1/departments", 200, call("/api/v1/departments"))
            .await;
        c.answer("/api/v1/catalogue", 200, call("/api/v1/catalogue"))
            .await;
        let list = c
            .answer(
                "/api/v1/services",
                200,
                call("/api/v1/services?per_page=200"),
            )
            .await;
        let codes: Vec<String> = list["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|s| s["code"].as_str().map(str::to_owned))
            .collect();
        assert!(codes.len() > 3, "{list}");
        for code in &codes {
            let detail = c
                .answer(
                    "/api/v1/services/{code}",
                    200,
                    call(&format!("/api/v1/services/{code}")),
                )
                .await;
            assert_eq!(detail["code"], code.as_str());
            c.answer(
                "/api/v1/services/{code}/prefill/sources",
                200,
                call(&format!("/api/v1/services/{code}/prefill/sources")),
            )
            .await;
            c.answer(
                "/api/v1/services/{code}/eligibility",
                200,
                call(&format!("/api/v1/services/{code}/eligibility")),
            )
            .await;
        }
    }
    c.answer(
        "/api/v1/services",
        400,
        anon(app, get.clone(), "/api/v1/services?per_page=0"),
    )
    .await;
    c.answer(
        "/api/v1/services/{code}/versions",
        200,
        anon(
            app,
            get.clone(),
            &format!("/api/v1/services/{SSC}/versions"),
        ),
    )
    .await;
    for template in [
        "/api/v1/services/{code}",
        "/api/v1/services/{code}/versions",
        "/api/v1/services/{code}/eligibility",
        "/api/v1/services/{code}/prefill/sources",
    ] {
        let path = template.replace("{code}", "NO-SUCH-SERVICE");
        c.answer(template, 404, anon(app, get.clone(), &path)).await;
    }
    let document = c
        .answer(
            "/api/openapi.json",
            200,
            anon(app, get.clone(), "/api/openapi.json"),
        )
        .await;
    assert_eq!(document["info"]["title"], openapi::API_TITLE);
    c.answer("/api/v1/me", 401, anon(app, get.clone(), "/api/v1/me"))
        .await;

    // everyone's account
    let wang = Session::new(&s, "/auth/login", "citizen-wang").await;
    let chen = Session::new(&s, "/auth/login", "enterprise-chen").await;
    let clerk = Session::new(&s, "/auth/staff/login", "clerk-sun").await;
    let officer = Session::new(&s, "/auth/staff/login", "officer-ma").await;
    let op = Session::new(&s, "/auth/staff/login", "operator-wu").await;
    for who in [&wang, &chen, &clerk, &officer, &op] {
        c.answer("/api/v1/me", 200, as_user(who, get.clone(), "/api/v1/me"))
            .await;
    }
    c.answer(
        "/api/v1/services/{code}/eligibility",
        200,
        as_user(
            &wang,
            get.clone(),
            &format!("/api/v1/services/{SSC}/eligibility"),
        ),
    )
    .await;

    // an application's life (case routes)
    let photo = c
        .answer("/api/v1/uploads", 201, upload(&wang, "photo.jpg"))
        .await;
    let lodge = |photo: &Value| json!({ "service_code": SSC, "values": valid_values(), "materials": [{ "material": "id_card", "substitute": true }, { "material": "photo", "upload_id": photo["id"] }] });
    let lodged = c
        .answer(
            "/api/v1/cases",
            201,
            as_user(&wang, post.clone(), "/api/v1/cases").json(&lodge(&photo)),
        )
        .await;
    let case_no = lodged["case_no"].as_str().expect("case_no").to_owned();
    let query_code = lodged["query_code"]
        .as_str()
        .expect("query_code")
        .to_owned();
    c.answer(
        "/api/v1/cases",
        200,
        as_user(&wang, get.clone(), "/api/v1/cases"),
    )
    .await;
    c.answer(
        "/api/v1/cases/{case_no}",
        200,
        as_user(&wang, get.clone(), &format!("/api/v1/cases/{case_no}")),
    )
    .await;
    c.answer(
        "/api/v1/public/cases/{case_no}",
        200,
        anon(
            app,
            get.clone(),
            &format!("/api/v1/public/cases/{case_no}?query_code={query_code}"),
        ),
    )
    .await;
    let staff_step = |who: &Session, body: Value| {
        as_user(
            who,
            Method::POST,
            &format!("/api/staff/v1/cases/{case_no}/transitions"),
        )
        .json(&body)
    };
    let transitions = "/api/staff/v1/cases/{case_no}/transitions";
    c.answer(
        transitions,
        200,
        staff_step(&clerk, json!({ "action": "accept" })),
    )
    .await;
    c.answer(
        transitions,
        200,
        staff_step(
            &officer,
            json!({ "action": "request_correction", "note": "照片不清晰，请重新上传" }),
        ),
    )
    .await;
    let photo2 = c
        .answer("/api/v1/uploads", 201, upload(&wang, "photo2.jpg"))
        .await;
    c.answer(
        "/api/v1/cases/{case_no}/correction",
        200,
        as_user(&wang, post.clone(), &format!("/api/v1/cases/{case_no}/correction")).json(
            &json!({ "note": "已重新上传", "materials": [{ "material": "photo", "upload_id": photo2["id"] }] }),
        ),
    )
    .await;
    c.answer(
        transitions,
        200,
        staff_step(
            &officer,
            json!({ "action": "conclude", "result": "approved", "note": "准予" }),
        ),
    )
    .await;
    c.answer(
        transitions,
        422,
        staff_step(&officer, json!({ "action": "approve" })),
    )
    .await;
    c.answer(
        "/api/v1/cases/{case_no}/rating",
        200,
        as_user(
            &wang,
            post.clone(),
            &format!("/api/v1/cases/{case_no}/rating"),
        )
        .json(&json!({ "rating": 5 })),
    )
    .await;
    c.answer(
        "/api/v1/notifications",
        200,
        as_user(&wang, get.clone(), "/api/v1/notifications"),
    )
    .await;
    let photo3 = c
        .answer("/api/v1/uploads", 201, upload(&wang, "photo3.jpg"))
        .await;
    let second = c
        .answer(
            "/api/v1/cases",
            201,
            as_user(&wang, post.clone(), "/api/v1/cases").json(&lodge(&photo3)),
        )
        .await;
    let second = second["case_no"].as_str().expect("case_no");
    c.answer(
        "/api/v1/cases/{case_no}/withdraw",
        200,
        as_user(
            &wang,
            post.clone(),
            &format!("/api/v1/cases/{second}/withdraw"),
        )
        .json(&json!({})),
    )
    .await;

    // drafts
    let draft = c
        .answer(
            "/api/v1/drafts",
            201,
            as_user(&wang, post.clone(), "/api/v1/drafts")
                .json(&json!({ "service_code": SSC, "values": { "bank": "icbc" } })),
        )
        .await;
    let draft = format!("/api/v1/drafts/{}", draft["id"].as_str().expect("id"));
    c.answer(
        "/api/v1/drafts/{id}",
        200,
        as_user(&wang, put.clone(), &draft)
            .json(&json!({ "service_code": SSC, "values": { "bank": "boc" } })),
    )
    .await;
    c.answer(
        "/api/v1/drafts",
        200,
        as_user(&wang, get.clone(), "/api/v1/drafts"),
    )
    .await;
    c.answer(
        "/api/v1/drafts/{id}",
        200,
        as_user(&wang, get.clone(), &draft),
    )
    .await;
    c.answer("/api/v1/drafts/{id}", 204, as_user(&wang, delete, &draft))
        .await;

    // the window: a clerk's lookup and intake, the worklist
    let lookup = |body: Value| as_user(&clerk, Method::POST, "/api/staff/v1/prefill").json(&body);
    let looked_up = c
        .answer(
            "/api/staff/v1/prefill",
            200,
            lookup(
                json!({ "service_code": SSC, "id_number": "150702198506123025", "purpose": "窗口受理社保卡申领" }),
            ),
        )
        .await;
    assert_eq!(looked_up["fields"]["applicant_name"]["value"], "王小明");
    c.answer(
        "/api/staff/v1/prefill",
        422,
        lookup(json!({ "service_code": SSC, "id_number": "150702198506123026", "purpose": "x" })),
    )
    .await;
    c.answer(
        "/api/staff/v1/prefill",
        400,
        lookup(json!({ "service_code": SSC, "unknown": true })),
    )
    .await;
    c.answer(
        "/api/staff/v1/prefill",
        403,
        as_user(&wang, post.clone(), "/api/staff/v1/prefill")
            .json(&json!({ "service_code": SSC, "id_number": "150702198506123025", "purpose": "窗口受理社保卡申领" })),
    )
    .await;
    c.answer(
        "/api/staff/v1/prefill",
        404,
        lookup(
            json!({ "service_code": "NO-SUCH-SERVICE", "id_number": "150702198506123025", "purpose": "窗口受理社保卡申领" }),
        ),
    )
    .await;
    let walk_in_photo = c
        .answer("/api/v1/uploads", 201, upload(&clerk, "walkin.jpg"))
        .await;
    c.answer(
        "/api/staff/v1/cases",
        201,
        as_user(&clerk, post.clone(), "/api/staff/v1/cases").json(&json!({
            "service_code": SSC,
            "applicant": { "kind": "person", "name": "孟淑华", "id_number": "150702199401162284" },
            "values": valid_values(),
            "materials": [{ "material": "id_card", "substitute": true }, { "material": "photo", "upload_id": walk_in_photo["id"] }],
        })),
    )
    .await;
    c.answer(
        "/api/staff/v1/cases",
        200,
        as_user(&clerk, get.clone(), "/api/staff/v1/cases"),
    )
    .await;
    c.answer(
        "/api/staff/v1/cases/{case_no}",
        200,
        as_user(
            &officer,
            get.clone(),
            &format!("/api/staff/v1/cases/{case_no}"),
        ),
    )
    .await;

    // prefill with consent: a person's (one resource unavailable) and an enterprise's
    // (e-licences stand in for materials)
    for (who, service) in [(&wang, SSC), (&chen, FOOD)] {
        c.answer(
            "/api/v1/services/{code}/prefill/consent",
            201,
            as_user(
                who,
                post.clone(),
                &format!("/api/v1/services/{service}/prefill/consent"),
            )
            .json(&json!({})),
        )
        .await;
        c.answer(
            "/api/v1/services/{code}/prefill",
            200,
            as_user(
                who,
                get.clone(),
                &format!("/api/v1/services/{service}/prefill"),
            ),
        )
        .await;
    }
    c.answer(
        "/api/v1/services/{code}/prefill",
        403,
        as_user(
            &wang,
            get.clone(),
            &format!("/api/v1/services/{SSC}/prefill?id_number=1"),
        ),
    )
    .await;
    c.answer(
        "/api/v1/services/{code}/prefill",
        401,
        anon(app, get.clone(), &format!("/api/v1/services/{SSC}/prefill")),
    )
    .await;
    c.answer(
        "/api/v1/services/{code}/prefill/consent",
        403,
        as_user(
            &clerk,
            post.clone(),
            &format!("/api/v1/services/{SSC}/prefill/consent"),
        )
        .json(&json!({})),
    )
    .await;
    let trail = c
        .answer(
            "/api/v1/me/data-access",
            200,
            as_user(&wang, get.clone(), "/api/v1/me/data-access"),
        )
        .await;
    assert!(trail["total"].as_u64() > Some(0), "{trail}");

    // operators
    c.answer(
        "/api/ops/v1/sharing",
        200,
        as_user(&op, get.clone(), "/api/ops/v1/sharing"),
    )
    .await;
    c.answer(
        "/api/ops/v1/sharing",
        403,
        as_user(&wang, get.clone(), "/api/ops/v1/sharing"),
    )
    .await;
    c.answer(
        "/api/ops/v1/providers",
        200,
        as_user(&op, get.clone(), "/api/ops/v1/providers"),
    )
    .await;
    // assessment figures (考核评价)
    let figures = "/api/ops/v1/supervision/figures";
    c.answer(figures, 200, as_user(&op, get.clone(), figures))
        .await;
    c.answer(
        figures,
        400,
        as_user(
            &op,
            get.clone(),
            "/api/ops/v1/supervision/figures?month=2026-13",
        ),
    )
    .await;
    c.answer(figures, 403, as_user(&officer, get.clone(), figures))
        .await;
    let trends = "/api/ops/v1/supervision/figures/trends";
    c.answer(
        trends,
        200,
        as_user(&op, get.clone(), &format!("{trends}?months=2")),
    )
    .await;
    c.answer(
        trends,
        400,
        as_user(&op, get.clone(), &format!("{trends}?months=0")),
    )
    .await;
    let export = "/api/ops/v1/supervision/figures/export";
    c.answer(
        export,
        200,
        as_user(&op, get.clone(), &format!("{export}?format=csv")),
    )
    .await;
    c.answer(
        export,
        200,
        as_user(&op, get.clone(), &format!("{export}?format=xlsx")),
    )
    .await;
    c.answer(
        export,
        400,
        as_user(&op, get.clone(), &format!("{export}?format=pdf")),
    )
    .await;
    let dept_figures = "/api/ops/v1/supervision/figures/departments/{uscc}";
    c.answer(
        dept_figures,
        200,
        as_user(
            &op,
            get.clone(),
            &format!("/api/ops/v1/supervision/figures/departments/{HRSS}"),
        ),
    )
    .await;
    c.answer(
        dept_figures,
        404,
        as_user(
            &op,
            get.clone(),
            "/api/ops/v1/supervision/figures/departments/NONE",
        ),
    )
    .await;
    let own = "/api/staff/v1/supervision/figures";
    c.answer(own, 200, as_user(&officer, get.clone(), own))
        .await;
    c.answer(own, 403, as_user(&op, get.clone(), own)).await;
    let mail = c
        .answer(
            "/api/ops/v1/mail",
            200,
            as_user(&op, get.clone(), "/api/ops/v1/mail?state=pending&limit=5"),
        )
        .await;
    assert!(mail["counts"]["pending"].is_i64(), "{mail}");
    c.answer(
        "/api/ops/v1/mail",
        400,
        as_user(&op, get.clone(), "/api/ops/v1/mail?state=lost"),
    )
    .await;
    let data_api = |uscc: &str, body: Value| {
        as_user(
            &op,
            Method::PUT,
            &format!("/api/ops/v1/departments/{uscc}/data-api"),
        )
        .json(&body)
    };
    let data_api_route = "/api/ops/v1/departments/{uscc}/data-api";
    c.answer(
        data_api_route,
        200,
        data_api(HRSS, json!({ "url": "https://hr.example/api/" })),
    )
    .await;
    c.answer(data_api_route, 200, data_api(HRSS, json!({ "url": null })))
        .await;
    c.answer(
        data_api_route,
        422,
        data_api(HRSS, json!({ "url": "ftp://hr.example/" })),
    )
    .await;
    c.answer(
        data_api_route,
        404,
        data_api("NO-SUCH-DEPARTMENT", json!({ "url": null })),
    )
    .await;
    c.answer(
        "/api/ops/v1/deliveries",
        200,
        as_user(&op, get.clone(), "/api/ops/v1/deliveries"),
    )
    .await;
    c.answer(
        "/api/ops/v1/deliveries/{event_id}/redeliver",
        409,
        as_user(
            &op,
            post.clone(),
            &format!("/api/ops/v1/deliveries/{}/redeliver", uuid::Uuid::now_v7()),
        ),
    )
    .await;
    c.answer(
        "/api/ops/v1/departments/{uscc}/delivery",
        200,
        as_user(
            &op,
            put.clone(),
            &format!("/api/ops/v1/departments/{HRSS}/delivery"),
        )
        .json(&json!({ "mode": "pull" })),
    )
    .await;

    // supervision: filings and monthly progress reports
    let filings = "/api/staff/v1/supervision/filings";
    let filing_body = json!({ "kind": "construction", "title": "社会保障卡系统升级",
        "amount": 100_000, "justification": "接入共享交换平台。" });
    c.answer(
        filings,
        422,
        as_user(&officer, post.clone(), filings).json(&json!({ "kind": "om", "title": "",
            "amount": 0, "justification": "" })),
    )
    .await;
    let filed = c
        .answer(
            filings,
            201,
            as_user(&officer, post.clone(), filings).json(&filing_body),
        )
        .await;
    let fid = filed["id"].as_str().expect("filing id").to_owned();
    c.answer(filings, 200, as_user(&officer, get.clone(), filings))
        .await;
    c.answer(
        "/api/staff/v1/supervision/filings/{id}",
        200,
        as_user(&officer, get.clone(), &format!("{filings}/{fid}")),
    )
    .await;
    c.answer(
        "/api/ops/v1/supervision/filings",
        200,
        as_user(
            &op,
            get.clone(),
            "/api/ops/v1/supervision/filings?state=submitted",
        ),
    )
    .await;
    c.answer(
        "/api/ops/v1/supervision/filings/{id}",
        200,
        as_user(
            &op,
            get.clone(),
            &format!("/api/ops/v1/supervision/filings/{fid}"),
        ),
    )
    .await;
    let review = format!("/api/ops/v1/supervision/filings/{fid}/review");
    c.answer(
        "/api/ops/v1/supervision/filings/{id}/review",
        422,
        as_user(&op, post.clone(), &review).json(&json!({ "action": "return" })),
    )
    .await;
    c.answer(
        "/api/ops/v1/supervision/filings/{id}/review",
        200,
        as_user(&op, post.clone(), &review)
            .json(&json!({ "action": "return", "comment": "请补充预算。" })),
    )
    .await;
    let mut resubmit_body = filing_body.clone();
    resubmit_body["note"] = json!("已补充。");
    for status in [200, 409] {
        c.answer(
            "/api/staff/v1/supervision/filings/{id}/resubmit",
            status,
            as_user(&officer, post.clone(), &format!("{filings}/{fid}/resubmit"))
                .json(&resubmit_body),
        )
        .await;
    }
    let tasks = c
        .answer(
            "/api/staff/v1/supervision/plan-tasks",
            200,
            as_user(
                &officer,
                get.clone(),
                "/api/staff/v1/supervision/plan-tasks",
            ),
        )
        .await;
    c.answer(
        "/api/ops/v1/supervision/plan-tasks",
        200,
        as_user(&op, get.clone(), "/api/ops/v1/supervision/plan-tasks"),
    )
    .await;
    c.answer(
        "/api/staff/v1/supervision/reports",
        200,
        as_user(&officer, get.clone(), "/api/staff/v1/supervision/reports"),
    )
    .await;
    let month = onewindow::supervision::filings::month_code(
        onewindow::supervision::filings::last_reportable(
            onewindow::supervision::filings::china_date(Utc::now()),
        ),
    );
    let report = format!("/api/staff/v1/supervision/reports/{month}");
    c.answer(
        "/api/staff/v1/supervision/reports/{month}",
        200,
        as_user(&officer, get.clone(), &report),
    )
    .await;
    let progress = |percent: i64| {
        json!({ "tasks": tasks["tasks"].as_array().expect("tasks").iter()
            .map(|t| json!({ "task": t["code"], "percent": percent, "note": "按计划推进" }))
            .collect::<Vec<_>>() })
    };
    c.answer(
        "/api/staff/v1/supervision/reports/{month}",
        422,
        as_user(&officer, put.clone(), &report).json(&progress(101)),
    )
    .await;
    c.answer(
        "/api/staff/v1/supervision/reports/{month}",
        201,
        as_user(&officer, put.clone(), &report).json(&progress(50)),
    )
    .await;
    c.answer(
        "/api/ops/v1/supervision/reports",
        200,
        as_user(
            &op,
            get.clone(),
            &format!("/api/ops/v1/supervision/reports?month={month}"),
        ),
    )
    .await;
    c.answer(
        "/api/ops/v1/supervision/reports/{month}/{uscc}",
        200,
        as_user(
            &op,
            get.clone(),
            &format!("/api/ops/v1/supervision/reports/{month}/{HRSS}"),
        ),
    )
    .await;

    // supervision: information systems (an officer registers and reports, the operator decides)
    let sys_body = json!({
        "name": "社保卡系统", "function": "社保卡业务", "users_scope": "人社窗口",
        "frequency": "daily", "network": "intranet", "hosting": "data_centre",
        "approved_on": "2016-05-20", "om_cost_per_year": 1000
    });
    let made = c
        .answer(
            "/api/staff/v1/supervision/systems",
            201,
            as_user(&officer, post.clone(), "/api/staff/v1/supervision/systems").json(&sys_body),
        )
        .await;
    let sys_id = made["id"].as_str().expect("id").to_owned();
    c.answer(
        "/api/staff/v1/supervision/systems",
        422,
        as_user(&officer, post.clone(), "/api/staff/v1/supervision/systems")
            .json(&json!({ "name": "" })),
    )
    .await;
    c.answer(
        "/api/staff/v1/supervision/systems",
        200,
        as_user(&officer, get.clone(), "/api/staff/v1/supervision/systems"),
    )
    .await;
    let sys_path = format!("/api/staff/v1/supervision/systems/{sys_id}");
    c.answer(
        "/api/staff/v1/supervision/systems/{id}",
        200,
        as_user(&officer, get.clone(), &sys_path),
    )
    .await;
    c.answer(
        "/api/staff/v1/supervision/systems/{id}",
        200,
        as_user(&officer, put.clone(), &sys_path).json(&sys_body),
    )
    .await;
    c.answer(
        "/api/staff/v1/supervision/self-inspection/{year}",
        200,
        as_user(
            &officer,
            put.clone(),
            "/api/staff/v1/supervision/self-inspection/2026",
        )
        .json(&json!({ "integration_plan": "并入", "data_needs": [] })),
    )
    .await;
    c.answer(
        "/api/staff/v1/supervision/self-inspection/{year}",
        200,
        as_user(
            &officer,
            get.clone(),
            "/api/staff/v1/supervision/self-inspection/2026",
        ),
    )
    .await;
    c.answer(
        "/api/ops/v1/supervision/systems",
        200,
        as_user(&op, get.clone(), "/api/ops/v1/supervision/systems"),
    )
    .await;
    c.answer(
        "/api/ops/v1/supervision/systems/{id}",
        200,
        as_user(
            &op,
            get.clone(),
            &format!("/api/ops/v1/supervision/systems/{sys_id}"),
        ),
    )
    .await;
    c.answer(
        "/api/ops/v1/supervision/systems/{id}/decision",
        201,
        as_user(
            &op,
            post.clone(),
            &format!("/api/ops/v1/supervision/systems/{sys_id}/decision"),
        )
        .json(&json!({ "decision": "keep", "reason": "在用" })),
    )
    .await;
    c.answer(
        "/api/ops/v1/supervision/self-inspections/{uscc}/{year}",
        200,
        as_user(
            &op,
            get.clone(),
            &format!("/api/ops/v1/supervision/self-inspections/{HRSS}/2026"),
        ),
    )
    .await;

    // open data (an officer drafts, the operator publishes, the public reads and asks)
    let upload = json!({
        "id": "training-sites", "title_zh": "培训场所", "title_en": "Training sites",
        "topic": "society", "licence": "cc-by-4.0", "update_cycle": "yearly", "source": "upload",
        "schema": [{ "name": "site", "title_zh": "场所", "title_en": "Site", "type": "string" },
                   { "name": "seats", "title_zh": "座位", "title_en": "Seats", "type": "integer", "unit": "个" }],
        "csv": "site,seats\n新华街培训中心,40\n"
    });
    let draft = "/api/staff/v1/open/datasets";
    c.answer(
        draft,
        201,
        as_user(&officer, post.clone(), draft).json(&upload),
    )
    .await;
    let mut ids = upload.clone();
    ids["id"] = json!("with-ids");
    ids["csv"] = json!("site,seats\n11010519491231002X,40\n");
    c.answer(
        draft,
        422,
        as_user(&officer, post.clone(), draft).json(&ids),
    )
    .await;
    c.answer(draft, 200, as_user(&officer, get.clone(), draft))
        .await;
    let ops_draft = "/api/ops/v1/open/datasets";
    let generated = json!({
        "id": "service-catalogue", "title_zh": "事项目录", "title_en": "Service catalogue",
        "topic": "government", "licence": "city-open-1.0", "update_cycle": "monthly",
        "source": "catalogue", "department": HRSS
    });
    c.answer(
        ops_draft,
        201,
        as_user(&op, post.clone(), ops_draft).json(&generated),
    )
    .await;
    c.answer(ops_draft, 409, as_user(&op, post.clone(), ops_draft).json(&json!({
        "id": "training-sites", "title_zh": "x", "title_en": "x", "topic": "society",
        "licence": "cc-by-4.0", "update_cycle": "yearly", "source": "catalogue", "department": "11150700MB1530001X"
    }))).await;
    c.answer(
        ops_draft,
        200,
        as_user(&op, get.clone(), "/api/ops/v1/open/datasets?status=draft"),
    )
    .await;
    c.answer(
        "/api/ops/v1/open/datasets/{id}",
        200,
        as_user(&op, get.clone(), "/api/ops/v1/open/datasets/training-sites"),
    )
    .await;
    c.answer(
        "/api/ops/v1/open/datasets/{id}",
        404,
        as_user(&op, get.clone(), "/api/ops/v1/open/datasets/none"),
    )
    .await;
    c.answer(
        "/api/ops/v1/open/datasets/{id}/return",
        422,
        as_user(
            &op,
            post.clone(),
            "/api/ops/v1/open/datasets/training-sites/return",
        )
        .json(&json!({ "reason": "" })),
    )
    .await;
    for id in ["training-sites", "service-catalogue"] {
        c.answer(
            "/api/ops/v1/open/datasets/{id}/publish",
            200,
            as_user(
                &op,
                post.clone(),
                &format!("/api/ops/v1/open/datasets/{id}/publish"),
            ),
        )
        .await;
    }
    c.answer(
        "/api/ops/v1/open/datasets/{id}/publish",
        409,
        as_user(
            &op,
            post.clone(),
            "/api/ops/v1/open/datasets/training-sites/publish",
        ),
    )
    .await;
    c.answer(
        "/api/ops/v1/open/datasets/{id}/return",
        409,
        as_user(
            &op,
            post.clone(),
            "/api/ops/v1/open/datasets/training-sites/return",
        )
        .json(&json!({ "reason": "x" })),
    )
    .await;
    c.answer(
        "/api/ops/v1/open/datasets/{id}/refresh",
        200,
        as_user(
            &op,
            post.clone(),
            "/api/ops/v1/open/datasets/service-catalogue/refresh",
        ),
    )
    .await;
    c.answer(
        "/api/ops/v1/open/datasets/{id}/refresh",
        409,
        as_user(
            &op,
            post.clone(),
            "/api/ops/v1/open/datasets/training-sites/refresh",
        ),
    )
    .await;
    for (path, template) in [
        ("/api/3/action", "/api/3/action/{action}"),
        ("/api/action", "/api/action/{action}"),
    ] {
        c.answer(
            template,
            200,
            anon(
                app,
                get.clone(),
                &format!("{path}/package_search?q=培训&rows=5"),
            ),
        )
        .await;
        c.answer(
            template,
            404,
            anon(app, get.clone(), &format!("{path}/package_show?id=none")),
        )
        .await;
        c.answer(
            template,
            409,
            anon(app, get.clone(), &format!("{path}/package_show")),
        )
        .await;
        c.answer(
            template,
            400,
            anon(app, get.clone(), &format!("{path}/package_create")),
        )
        .await;
        c.answer(
            template,
            200,
            anon(app, post.clone(), &format!("{path}/package_show"))
                .json(&json!({ "id": "training-sites" })),
        )
        .await;
        c.answer(
            template,
            404,
            anon(app, post.clone(), &format!("{path}/resource_show"))
                .json(&json!({ "id": "none-csv" })),
        )
        .await;
        c.answer(
            template,
            409,
            anon(app, post.clone(), &format!("{path}/package_search"))
                .json(&json!({ "fq": "colour:red" })),
        )
        .await;
        c.answer(
            template,
            400,
            anon(app, post.clone(), &format!("{path}/package_list")).body("{"),
        )
        .await;
    }
    c.answer(
        "/open/catalog.jsonld",
        200,
        anon(app, get.clone(), "/open/catalog.jsonld"),
    )
    .await;
    c.answer(
        "/open/catalog.ttl",
        200,
        anon(app, get.clone(), "/open/catalog.ttl"),
    )
    .await;
    for f in ["data.csv", "data.json", "datapackage.json"] {
        c.answer(
            "/open/datasets/{id}/{file}",
            200,
            anon(
                app,
                get.clone(),
                &format!("/open/datasets/training-sites/{f}"),
            ),
        )
        .await;
    }
    c.answer(
        "/open/datasets/{id}/{file}",
        404,
        anon(app, get.clone(), "/open/datasets/training-sites/data.xml"),
    )
    .await;
    let filed = c
        .answer(
            "/api/open/v1/requests",
            201,
            anon(app, post.clone(), "/api/open/v1/requests")
                .json(&json!({ "title": "培训补贴数据", "body": "按月统计", "department": HRSS })),
        )
        .await;
    c.answer(
        "/api/open/v1/requests",
        422,
        anon(app, post.clone(), "/api/open/v1/requests").json(&json!({ "title": "", "body": "" })),
    )
    .await;
    let rid = filed["id"].as_str().expect("id").to_owned();
    c.answer(
        "/api/staff/v1/open/requests/{id}/answer",
        200,
        as_user(
            &officer,
            post.clone(),
            &format!("/api/staff/v1/open/requests/{rid}/answer"),
        )
        .json(&json!({ "answer": "已列入计划" })),
    )
    .await;
    c.answer(
        "/api/staff/v1/open/requests/{id}/answer",
        404,
        as_user(
            &officer,
            post.clone(),
            "/api/staff/v1/open/requests/none/answer",
        )
        .json(&json!({ "answer": "x" })),
    )
    .await;
    c.answer(
        "/api/ops/v1/open/requests/{id}/answer",
        200,
        as_user(
            &op,
            post.clone(),
            &format!("/api/ops/v1/open/requests/{rid}/answer"),
        )
        .json(&json!({ "answer": "已列入计划。" })),
    )
    .await;
    c.answer(
        "/api/ops/v1/open/requests/{id}/answer",
        422,
        as_user(
            &op,
            post.clone(),
            &format!("/api/ops/v1/open/requests/{rid}/answer"),
        )
        .json(&json!({ "answer": "" })),
    )
    .await;
    c.answer(
        "/api/open/v1/requests",
        200,
        anon(app, get.clone(), "/api/open/v1/requests"),
    )
    .await;
    // the regional platform (no region configured here: an empty queue)
    let region = c
        .answer(
            "/api/ops/v1/region",
            200,
            as_user(&op, get.clone(), "/api/ops/v1/region?state=dead"),
        )
        .await;
    assert_eq!(region["configured"], false);
    c.answer(
        "/api/ops/v1/region/reports/{id}/redeliver",
        409,
        as_user(
            &op,
            post.clone(),
            &format!(
                "/api/ops/v1/region/reports/{}/redeliver",
                uuid::Uuid::now_v7()
            ),
        ),
    )
    .await;
    // catalogue management (政务信息资源目录): a department edits, the operator publishes
    let cat_body = |name_en: &str| {
        json!({
            "name": "社会保险参保信息", "name_en": name_en, "share_type": "conditional",
            "conditions": "仅用于本人办理社会保险相关事项。", "open": "not_open",
            "update_cycle": "daily", "subject": "person",
            "items": [
                {"id": "insured_status", "name": "基本养老保险参保状态", "name_en": "Basic pension insurance status", "type": "code", "personal": true, "authoritative": true},
                {"id": "social_security_card_no", "name": "社会保障卡卡号", "name_en": "Social security card number", "type": "text", "personal": true, "authoritative": true}
            ]
        })
    };
    let cat_own = "/api/staff/v1/catalogue/resources";
    c.answer(cat_own, 200, as_user(&officer, get.clone(), cat_own))
        .await;
    c.answer(cat_own, 403, as_user(&op, get.clone(), cat_own))
        .await;
    let mut proposal = cat_body("Employment registrations");
    proposal["code"] = json!("employment_reg");
    c.answer(
        cat_own,
        201,
        as_user(&officer, post.clone(), cat_own).json(&proposal),
    )
    .await;
    c.answer(
        cat_own,
        422,
        as_user(&officer, post.clone(), cat_own).json(&cat_body("x")),
    )
    .await;
    let cat_res = "/api/staff/v1/catalogue/resources/{code}";
    let si = "/api/staff/v1/catalogue/resources/social_insurance";
    c.answer(cat_res, 200, as_user(&officer, get.clone(), si))
        .await;
    c.answer(
        cat_res,
        404,
        as_user(
            &officer,
            get.clone(),
            "/api/staff/v1/catalogue/resources/nope",
        ),
    )
    .await;
    let edited = c
        .answer(
            cat_res,
            201,
            as_user(&officer, post.clone(), si).json(&cat_body("Social insurance register")),
        )
        .await;
    let cat_v = edited["version"].as_i64().expect("version");
    let mut dropped = cat_body("x");
    dropped["items"].as_array_mut().expect("items").pop();
    c.answer(
        cat_res,
        422,
        as_user(&officer, post.clone(), si).json(&dropped),
    )
    .await;
    c.answer(
        cat_res,
        400,
        as_user(&officer, post.clone(), si).json(&json!({"name": 1})),
    )
    .await;
    c.answer(
        "/api/staff/v1/catalogue/resources/{code}/versions/{version}",
        200,
        as_user(&officer, get.clone(), &format!("{si}/versions/1")),
    )
    .await;
    c.answer(
        "/api/staff/v1/catalogue/resources/{code}/versions/{version}",
        404,
        as_user(&officer, get.clone(), &format!("{si}/versions/99")),
    )
    .await;
    let pending = c
        .answer(
            "/api/ops/v1/catalogue/pending",
            200,
            as_user(&op, get.clone(), "/api/ops/v1/catalogue/pending"),
        )
        .await;
    assert!(!pending["pending"].as_array().expect("pending").is_empty());
    let ops_si = "/api/ops/v1/catalogue/resources/social_insurance/versions";
    c.answer(
        "/api/ops/v1/catalogue/resources/{code}/versions/{version}",
        200,
        as_user(&op, get.clone(), &format!("{ops_si}/{cat_v}")),
    )
    .await;
    c.answer(
        "/api/ops/v1/catalogue/resources/{code}/versions/{version}",
        404,
        as_user(&op, get.clone(), &format!("{ops_si}/0")),
    )
    .await;
    c.answer(
        "/api/ops/v1/catalogue/resources/{code}/versions/{version}/return",
        422,
        as_user(&op, post.clone(), &format!("{ops_si}/{cat_v}/return"))
            .json(&json!({"comment": ""})),
    )
    .await;
    c.answer(
        "/api/ops/v1/catalogue/resources/{code}/versions/{version}/publish",
        200,
        as_user(&op, post.clone(), &format!("{ops_si}/{cat_v}/publish")),
    )
    .await;
    c.answer(
        "/api/ops/v1/catalogue/resources/{code}/versions/{version}/publish",
        409,
        as_user(&op, post.clone(), &format!("{ops_si}/{cat_v}/publish")),
    )
    .await;
    c.answer(
        "/api/ops/v1/catalogue/resources/{code}/versions/{version}/return",
        409,
        as_user(&op, post.clone(), &format!("{ops_si}/{cat_v}/return"))
            .json(&json!({"comment": "请补充"})),
    )
    .await;
    c.answer(
        "/api/ops/v1/catalogue/resources/{code}/versions/{version}/return",
        200,
        as_user(
            &op,
            post.clone(),
            "/api/ops/v1/catalogue/resources/employment_reg/versions/1/return",
        )
        .json(&json!({"comment": "请补充共享条件"})),
    )
    .await;
    c.answer(
        "/api/v1/catalogue/search",
        200,
        anon(
            app,
            get.clone(),
            "/api/v1/catalogue/search?q=%E5%8D%A1%E5%8F%B7",
        ),
    )
    .await;
    c.answer(
        "/api/ops/v1/region/redeliver",
        200,
        as_user(&op, post.clone(), "/api/ops/v1/region/redeliver"),
    )
    .await;
    c.answer(
        "/api/v1/catalogue/search",
        400,
        anon(app, get.clone(), "/api/v1/catalogue/search?share_type=some"),
    )
    .await;
    c.answer(
        "/api/v1/catalogue/inventory.csv",
        200,
        anon(app, get.clone(), "/api/v1/catalogue/inventory.csv"),
    )
    .await;
    c.answer(
        "/api/v1/catalogue/inventory.csv",
        400,
        anon(app, get.clone(), "/api/v1/catalogue/inventory.csv?open=x"),
    )
    .await;
    // sharing requests and grants: officer-ma asks 公安局 for population data for its
    // system; officer-gao asks for more, it is answered, approved, then revoked
    let gao = Session::new(&s, "/auth/staff/login", "officer-gao").await;
    let requests = "/api/staff/v1/sharing/requests";
    let filed = c
        .answer(
            requests,
            201,
            as_user(&officer, post.clone(), requests).json(&json!({
                "resource": "person", "system": sys_id, "purpose": "资格认证",
                "legal_basis": "《社会保险法》", "items": ["name", "gender"],
                "period_until": "2027-12-31"
            })),
        )
        .await;
    let rid = filed["id"].as_str().expect("id").to_owned();
    c.answer(
        requests,
        422,
        as_user(&officer, post.clone(), requests).json(&json!({
            "resource": "criminal_record", "service": "x", "purpose": "x",
            "legal_basis": "x", "items": ["has_record"]
        })),
    )
    .await;
    c.answer(requests, 200, as_user(&officer, get.clone(), requests))
        .await;
    c.answer(
        "/api/staff/v1/sharing/requests/{id}",
        200,
        as_user(&gao, get.clone(), &format!("{requests}/{rid}")),
    )
    .await;
    let decision = format!("{requests}/{rid}/decision");
    c.answer(
        "/api/staff/v1/sharing/requests/{id}/decision",
        200,
        as_user(&gao, post.clone(), &decision).json(&json!({ "action": "ask", "note": "用途？" })),
    )
    .await;
    c.answer(
        "/api/staff/v1/sharing/requests/{id}/answer",
        200,
        as_user(&officer, post.clone(), &format!("{requests}/{rid}/answer"))
            .json(&json!({ "note": "待遇资格认证" })),
    )
    .await;
    let approved = c
        .answer(
            "/api/staff/v1/sharing/requests/{id}/decision",
            200,
            as_user(&gao, post.clone(), &decision)
                .json(&json!({ "action": "approve", "items": ["name"] })),
        )
        .await;
    c.answer(
        "/api/staff/v1/sharing/requests/{id}/decision",
        409,
        as_user(&gao, post.clone(), &decision).json(&json!({ "action": "approve" })),
    )
    .await;
    let granted = approved["grant_id"].as_str().expect("grant").to_owned();
    c.answer(
        "/api/staff/v1/sharing/grants",
        200,
        as_user(&gao, get.clone(), "/api/staff/v1/sharing/grants"),
    )
    .await;
    let revoke = format!("/api/staff/v1/sharing/grants/{granted}/revoke");
    c.answer(
        "/api/staff/v1/sharing/grants/{id}/revoke",
        200,
        as_user(&gao, post.clone(), &revoke).json(&json!({ "reason": "停用" })),
    )
    .await;
    c.answer(
        "/api/staff/v1/sharing/grants/{id}/revoke",
        409,
        as_user(&gao, post.clone(), &revoke).json(&json!({ "reason": "停用" })),
    )
    .await;
    c.answer(
        "/api/ops/v1/sharing/grants",
        200,
        as_user(&op, get.clone(), "/api/ops/v1/sharing/grants"),
    )
    .await;

    // probes
    c.answer("/healthz", 200, anon(app, get.clone(), "/healthz"))
        .await;
    let ready = c
        .answer("/readyz", 200, anon(app, get.clone(), "/readyz"))
        .await;
    assert_eq!(ready["status"], "ready");
    let metrics = c.answer("/metrics", 200, anon(app, get, "/metrics")).await;
    assert!(
        metrics
            .as_str()
            .is_some_and(|m| m.contains("http_requests_total"))
    );

    c.finish(&["public", "citizen", "staff", "operator", "probes"]);
}

async fn token(s: &LoginSetup, scopes: &[&str]) -> String {
    let secret = tokens::generate();
    let t = ApiToken {
        id: uuid::Uuid::now_v7(),
        department: HRSS.into(),
        name: "openapi".into(),
        scopes: scopes.iter().map(|x| x.to_string()).collect(),
        created_at: Utc::now(),
        expires_at: None,
        revoked_at: None,
    };
    s.app
        .state
        .store
        .insert_api_token(&t, &tokens::hash(&secret))
        .await
        .expect("token");
    secret
}

async fn answers_to_departments_match_the_document(b: Backend) {
    let s = with_dev_idp(b, &[("worker_in_serve", "false")]).await;
    let app = &s.app;
    let mut c = Checker::new(app).await;

    // a case with an uploaded and a substituted material, accepted at the window
    let citizen = Session::new(&s, "/auth/login", "citizen-wang").await;
    let (_, photo) = citizen.upload("p.jpg", jpeg(3)).await;
    let (status, lodged) = citizen
        .post(
            "/api/v1/cases",
            &json!({ "service_code": SSC, "values": valid_values(), "materials": [{ "material": "id_card", "substitute": true }, { "material": "photo", "upload_id": photo["id"] }] }),
        )
        .await;
    assert_eq!(status, 201, "{lodged}");
    let case_no = lodged["case_no"].as_str().expect("case_no").to_owned();
    let clerk = Session::new(&s, "/auth/staff/login", "clerk-sun").await;
    let (status, _) = crate::cases::step(&clerk, &case_no, json!({ "action": "accept" })).await;
    assert_eq!(status, 200);

    let t = token(
        &s,
        &["cases:read", "cases:write", "inbox", "materials:read"],
    )
    .await;
    let call = |method: Method, path: &str| anon(app, method, path).bearer_auth(&t);
    let get = |path: &str| call(Method::GET, path);

    c.answer("/api/dept/v1/whoami", 200, get("/api/dept/v1/whoami"))
        .await;
    let services = c
        .answer(
            "/api/dept/v1/departments/{uscc}/services",
            200,
            get(&format!("/api/dept/v1/departments/{HRSS}/services")),
        )
        .await;
    assert!(!services["items"].as_array().expect("items").is_empty());
    let list = c
        .answer(
            "/api/dept/v1/cases",
            200,
            get("/api/dept/v1/cases?status=accepted,submitted"),
        )
        .await;
    assert_eq!(list["items"][0]["case_no"], case_no.as_str());
    c.answer(
        "/api/dept/v1/cases",
        400,
        get("/api/dept/v1/cases?status=nonsense"),
    )
    .await;
    let detail = c
        .answer(
            "/api/dept/v1/cases/{case_no}",
            200,
            get(&format!("/api/dept/v1/cases/{case_no}")),
        )
        .await;
    assert!(!detail["timeline"].as_array().expect("timeline").is_empty());
    let upload_id = detail["materials"]
        .as_array()
        .expect("materials")
        .iter()
        .find_map(|m| m["upload_id"].as_str())
        .expect("an uploaded material")
        .to_owned();
    c.answer(
        "/api/dept/v1/cases/{case_no}/materials/{upload_id}",
        200,
        get(&format!(
            "/api/dept/v1/cases/{case_no}/materials/{upload_id}"
        )),
    )
    .await;
    c.answer(
        "/api/dept/v1/cases/{case_no}/materials/{upload_id}",
        404,
        get(&format!(
            "/api/dept/v1/cases/{case_no}/materials/{}",
            uuid::Uuid::now_v7()
        )),
    )
    .await;
    let transition = |body: Value| {
        call(
            Method::POST,
            &format!("/api/dept/v1/cases/{case_no}/transitions"),
        )
        .json(&body)
    };
    let transitions = "/api/dept/v1/cases/{case_no}/transitions";
    c.answer(
        transitions,
        200,
        transition(json!({ "action": "start_review" })),
    )
    .await;
    c.answer(transitions, 409, transition(json!({ "action": "accept" })))
        .await;
    let invalid = c
        .answer(transitions, 422, transition(json!({ "action": "approve" })))
        .await;
    assert_eq!(invalid["errors"][0]["field"], "action");
    let page = c
        .answer("/api/dept/v1/inbox", 200, get("/api/dept/v1/inbox?limit=5"))
        .await;
    let events = page["events"].as_array().expect("events");
    assert!(!events.is_empty());
    let with_file = events[0]["data"]["materials"]
        .as_array()
        .expect("materials")
        .iter()
        .any(|m| m["download_url"].is_string());
    assert!(with_file, "the event links the uploaded file");
    let ack = format!(
        "/api/dept/v1/inbox/{}/ack",
        events[0]["id"].as_str().expect("event id")
    );
    c.answer(
        "/api/dept/v1/inbox/{event_id}/ack",
        204,
        call(Method::POST, &ack),
    )
    .await;
    c.answer(
        "/api/dept/v1/inbox/{event_id}/ack",
        404,
        call(Method::POST, &ack),
    )
    .await;
    c.answer(
        "/.well-known/jwks.json",
        200,
        anon(app, Method::GET, "/.well-known/jwks.json"),
    )
    .await;
    let document = c
        .answer(
            "/api/dept/v1/openapi.json",
            200,
            anon(app, Method::GET, "/api/dept/v1/openapi.json"),
        )
        .await;
    assert_eq!(document["info"]["title"], openapi::TITLE);

    // problems: no token, a wrong scope, another department, an unknown case
    c.answer(
        "/api/dept/v1/cases",
        401,
        anon(app, Method::GET, "/api/dept/v1/cases"),
    )
    .await;
    c.answer(
        "/api/dept/v1/whoami",
        401,
        anon(app, Method::GET, "/api/dept/v1/whoami"),
    )
    .await;
    let reader = token(&s, &["cases:read"]).await;
    c.answer(
        "/api/dept/v1/inbox",
        403,
        anon(app, Method::GET, "/api/dept/v1/inbox").bearer_auth(&reader),
    )
    .await;
    c.answer(
        "/api/dept/v1/departments/{uscc}/services",
        403,
        get("/api/dept/v1/departments/11150700MB1530001X/services"),
    )
    .await;
    c.answer(
        "/api/dept/v1/cases/{case_no}",
        404,
        get("/api/dept/v1/cases/HLBE20000101-NOSUCHNO"),
    )
    .await;
    // shared data: refused without a grant, answered under one (items limited), a bad body
    let data = token(&s, &["data:read"]).await;
    let read = |body: Value| {
        anon(app, Method::POST, "/api/dept/v1/data/person")
            .bearer_auth(&data)
            .json(&body)
    };
    let wang =
        json!({ "subject": "150702198506123025", "purpose": "核验", "items": ["name", "phone"] });
    c.answer("/api/dept/v1/data/{resource}", 403, read(wang.clone()))
        .await;
    let now = Utc::now();
    s.app
        .state
        .store
        .import_grants(&[onewindow::store::grants::Grant {
            id: uuid::Uuid::now_v7(),
            resource: "person".into(),
            provider: "11150700MB15300021".into(),
            consumer_department: HRSS.into(),
            consumer_kind: "system".into(),
            consumer: uuid::Uuid::now_v7().to_string(),
            items: vec!["name".into()],
            valid_from: now,
            valid_until: None,
            revoked_at: None,
            revoked_by: None,
            revoked_reason: None,
            source: "request".into(),
            request_id: None,
            import_key: None,
            reads: 0,
            last_read_at: None,
            created_at: now,
        }])
        .await
        .expect("grant");
    let answered = c
        .answer("/api/dept/v1/data/{resource}", 200, read(wang.clone()))
        .await;
    assert_eq!(answered["withheld"], json!(["phone"]));
    c.answer(
        "/api/dept/v1/data/{resource}",
        422,
        read(json!({ "subject": "x", "purpose": "" })),
    )
    .await;

    c.finish(&["department"]);
}

//! The department API's OpenAPI document: served over HTTP, OpenAPI 3.1, every department
//! route with its methods, the transition body and `Idempotency-Key`, the bearer scheme,
//! every `$ref` resolvable; and the real answers of the gateway match their schemas.

use std::collections::{BTreeMap, BTreeSet};

use chrono::Utc;
use onewindow::auth::tokens;
use onewindow::store::ApiToken;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::cases::{SSC, Session, jpeg, step, valid_values};
use crate::harness::{Backend, TestApp};
use crate::login::{LoginSetup, with_dev_idp};

backend_tests!(real_answers_match_the_documented_schemas);

const HRSS: &str = "11150700MB15300034";

/// Every department route and its methods.
const ROUTES: [(&str, &[&str]); 9] = [
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
];

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

async fn fetch(app: &TestApp) -> Value {
    let resp = app.get("/api/dept/v1/openapi.json", None).await;
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

#[tokio::test]
async fn the_document_describes_every_department_route() {
    let app = TestApp::spawn(Backend::SqliteMemory).await;
    let doc = fetch(&app).await;

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

    // every department route, with exactly its methods; no operator route
    let paths = doc["paths"].as_object().expect("paths");
    for (path, methods) in ROUTES {
        let item = paths.get(path).unwrap_or_else(|| panic!("{path} missing"));
        let documented: BTreeSet<String> = METHODS
            .iter()
            .filter(|m| item.get(**m).is_some())
            .map(|m| m.to_string())
            .collect();
        assert_eq!(documented, set(methods), "{path}");
    }
    assert!(
        paths.keys().all(|p| !p.starts_with("/api/ops/")),
        "operator routes are not part of the department document"
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
    assert_eq!(needs("/.well-known/jwks.json", "get"), None, "public");

    // every authenticated operation answers 401 and 403 with a problem document, and
    // every error it documents is problem+json
    for (path, methods) in ROUTES {
        for m in methods {
            let op = &doc["paths"][path][*m];
            let responses = op["responses"].as_object().expect("responses");
            if path != "/.well-known/jwks.json" {
                assert!(responses.contains_key("401"), "{m} {path} 401");
            }
            if path != "/.well-known/jwks.json" && path != "/api/dept/v1/whoami" {
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
        ["200", "400", "401", "403", "404", "409", "422"]
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
        set(&["status", "updated_since", "page", "per_page"])
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

    // snapshot-free structure: every reference resolves to a schema
    let mut found = Vec::new();
    refs(&doc, "#", &mut found);
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

// ---- real answers against their schemas ----------------------------------------------

/// Checks `v` against `schema`, strictly: an object property the schema does not name is
/// an error (so an undocumented field in an answer is caught).
fn check(doc: &Value, schema: &Value, v: &Value, at: &str, errors: &mut Vec<String>) {
    let schema = resolve(doc, schema);
    for k in ["oneOf", "anyOf"] {
        if let Some(alts) = schema.get(k).and_then(Value::as_array) {
            let fits = alts.iter().any(|a| {
                let mut e = Vec::new();
                check(doc, a, v, at, &mut e);
                e.is_empty()
            });
            if !fits {
                errors.push(format!("{at}: {v} fits none of {k}"));
            }
            return;
        }
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for a in all {
            check(doc, a, v, at, errors);
        }
    }
    if let Some(t) = schema.get("type") {
        let types: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let fits = types.iter().any(|t| match *t {
            "null" => v.is_null(),
            "string" => v.is_string(),
            "integer" => v.is_i64() || v.is_u64(),
            "number" => v.is_number(),
            "boolean" => v.is_boolean(),
            "array" => v.is_array(),
            "object" => v.is_object(),
            _ => false,
        });
        if !fits {
            errors.push(format!("{at}: {v} is not {types:?}"));
            return;
        }
    }
    if let Some(e) = schema.get("enum").and_then(Value::as_array)
        && !v.is_null()
        && !e.contains(v)
    {
        errors.push(format!("{at}: {v} is not one of {e:?}"));
    }
    if let (Some(f), Some(s)) = (schema.get("format").and_then(Value::as_str), v.as_str()) {
        let ok = match f {
            "uuid" => uuid::Uuid::parse_str(s).is_ok(),
            "date" => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok(),
            "date-time" => chrono::DateTime::parse_from_rfc3339(s).is_ok(),
            _ => true,
        };
        if !ok {
            errors.push(format!("{at}: {s:?} is not a {f}"));
        }
    }
    if let Some(obj) = v.as_object() {
        let props = schema.get("properties").and_then(Value::as_object);
        if let Some(req) = schema.get("required").and_then(Value::as_array) {
            for r in req.iter().filter_map(Value::as_str) {
                if !obj.contains_key(r) {
                    errors.push(format!("{at}: required {r:?} missing"));
                }
            }
        }
        for (k, x) in obj {
            match (
                props.and_then(|p| p.get(k)),
                schema.get("additionalProperties"),
            ) {
                (Some(s), _) => check(doc, s, x, &format!("{at}.{k}"), errors),
                (None, Some(Value::Bool(true))) => {}
                (None, Some(s)) if s.is_object() => check(doc, s, x, &format!("{at}.{k}"), errors),
                (None, _) if props.is_none() => {}
                (None, _) => errors.push(format!("{at}: undocumented property {k:?}")),
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), v.as_array()) {
        for (i, x) in arr.iter().enumerate() {
            check(doc, items, x, &format!("{at}[{i}]"), errors);
        }
    }
}

/// The schema an operation documents for a status and media type.
fn response_schema<'a>(
    doc: &'a Value,
    path: &str,
    method: &str,
    status: u16,
    media: &str,
) -> &'a Value {
    let s =
        &doc["paths"][path][method]["responses"][status.to_string()]["content"][media]["schema"];
    assert!(
        !s.is_null(),
        "{method} {path} documents no {status} {media}"
    );
    s
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

async fn real_answers_match_the_documented_schemas(b: Backend) {
    let s = with_dev_idp(b, &[("worker_in_serve", "false")]).await;
    let doc = fetch(&s.app).await;

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
    assert_eq!(
        step(&clerk, &case_no, json!({ "action": "accept" }))
            .await
            .0,
        200
    );

    let t = token(
        &s,
        &["cases:read", "cases:write", "inbox", "materials:read"],
    )
    .await;
    let call =
        |method: reqwest::Method, path: String, body: Option<Value>, bearer: Option<String>| {
            let c = s.app.client.clone();
            let url = s.app.url(&path);
            async move {
                let mut r = c.request(method, url);
                if let Some(t) = bearer {
                    r = r.bearer_auth(t);
                }
                if let Some(b) = body {
                    r = r.json(&b);
                }
                let r = r.send().await.expect("request");
                let status = r.status().as_u16();
                let media = r
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                (
                    status,
                    media,
                    r.json::<Value>().await.unwrap_or(Value::Null),
                )
            }
        };
    let get = |path: &str| call(reqwest::Method::GET, path.to_owned(), None, Some(t.clone()));

    let mut errors = Vec::new();
    let mut expect = |answer: (u16, String, Value), path: &str, method: &str, status: u16| {
        let (got, media, body) = answer;
        assert_eq!(got, status, "{method} {path}: {body}");
        let media = media.split(';').next().unwrap_or("").trim().to_owned();
        let schema = response_schema(&doc, path, method, status, &media);
        check(
            &doc,
            schema,
            &body,
            &format!("{method} {path} {status}"),
            &mut errors,
        );
        body
    };

    expect(
        get("/api/dept/v1/whoami").await,
        "/api/dept/v1/whoami",
        "get",
        200,
    );
    let services = expect(
        get(&format!("/api/dept/v1/departments/{HRSS}/services")).await,
        "/api/dept/v1/departments/{uscc}/services",
        "get",
        200,
    );
    assert!(!services["items"].as_array().expect("items").is_empty());
    let list = expect(
        get("/api/dept/v1/cases?status=accepted,submitted").await,
        "/api/dept/v1/cases",
        "get",
        200,
    );
    assert_eq!(list["items"][0]["case_no"], case_no.as_str());
    let detail = expect(
        get(&format!("/api/dept/v1/cases/{case_no}")).await,
        "/api/dept/v1/cases/{case_no}",
        "get",
        200,
    );
    assert!(!detail["timeline"].as_array().expect("timeline").is_empty());
    expect(
        call(
            reqwest::Method::POST,
            format!("/api/dept/v1/cases/{case_no}/transitions"),
            Some(json!({ "action": "start_review" })),
            Some(t.clone()),
        )
        .await,
        "/api/dept/v1/cases/{case_no}/transitions",
        "post",
        200,
    );
    let page = expect(
        get("/api/dept/v1/inbox?limit=5").await,
        "/api/dept/v1/inbox",
        "get",
        200,
    );
    let events = page["events"].as_array().expect("events");
    assert!(!events.is_empty());
    let with_file = events[0]["data"]["materials"]
        .as_array()
        .expect("materials")
        .iter()
        .any(|m| m["download_url"].is_string());
    assert!(with_file, "the event links the uploaded file");
    expect(
        call(
            reqwest::Method::GET,
            "/.well-known/jwks.json".into(),
            None,
            None,
        )
        .await,
        "/.well-known/jwks.json",
        "get",
        200,
    );

    // problems: no token, a wrong scope, an unknown case, a refused step, a bad action
    expect(
        call(
            reqwest::Method::GET,
            "/api/dept/v1/cases".into(),
            None,
            None,
        )
        .await,
        "/api/dept/v1/cases",
        "get",
        401,
    );
    let reader = token(&s, &["cases:read"]).await;
    expect(
        call(
            reqwest::Method::GET,
            "/api/dept/v1/inbox".into(),
            None,
            Some(reader),
        )
        .await,
        "/api/dept/v1/inbox",
        "get",
        403,
    );
    expect(
        get("/api/dept/v1/cases/HLBE20000101-NOSUCHNO").await,
        "/api/dept/v1/cases/{case_no}",
        "get",
        404,
    );
    let transition = |body: Value| {
        call(
            reqwest::Method::POST,
            format!("/api/dept/v1/cases/{case_no}/transitions"),
            Some(body),
            Some(t.clone()),
        )
    };
    expect(
        transition(json!({ "action": "accept" })).await,
        "/api/dept/v1/cases/{case_no}/transitions",
        "post",
        409,
    );
    let invalid = expect(
        transition(json!({ "action": "approve" })).await,
        "/api/dept/v1/cases/{case_no}/transitions",
        "post",
        422,
    );
    assert_eq!(invalid["errors"][0]["field"], "action");

    assert!(
        errors.is_empty(),
        "answers differ from the document:\n{}",
        {
            let mut by: BTreeMap<&str, usize> = BTreeMap::new();
            for e in &errors {
                *by.entry(e.as_str()).or_default() += 1;
            }
            by.keys().copied().collect::<Vec<_>>().join("\n")
        }
    );
}

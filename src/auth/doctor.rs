//! `onewindow doctor`: checks a configured identity provider before anyone tries to log
//! in: its discovery document (reachable, the issuer as configured, the endpoints the
//! login needs, a key set with keys), the scopes the gateway asks for, and the claim
//! mapping (every configured claim name among the provider's `claims_supported`, the
//! assurance values it announces mapped to a level). Each finding says what is wrong
//! and which setting to change.

use serde_json::Value;

use crate::config::Settings;

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Checked and right.
    Ok,
    /// Could not be checked, or may be intended.
    Note,
    /// Wrong: logins will fail or be refused.
    Fail,
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// How serious.
    pub severity: Severity,
    /// What was found, naming the setting to change when there is one.
    pub text: String,
}

impl Finding {
    fn new(severity: Severity, text: impl Into<String>) -> Finding {
        Finding {
            severity,
            text: text.into(),
        }
    }
}

/// One provider to check: who it serves, where it is, and what the gateway expects of it.
#[derive(Debug, Clone)]
pub struct Expectation {
    /// `citizen` or `staff`, for the report.
    pub audience: &'static str,
    /// The configured issuer.
    pub issuer: String,
    /// The setting that holds the scopes, and the scopes.
    pub scopes: (&'static str, Vec<String>),
    /// (setting, claim name) the gateway reads.
    pub claims: Vec<(&'static str, String)>,
    /// The configured assurance value → level table.
    pub acr_levels: Vec<(String, u8)>,
    /// Whether the assurance claim is required (citizen logins).
    pub needs_assurance: bool,
}

/// The providers configured in `s`, with what the gateway expects of each.
pub fn expectations(s: &Settings) -> Vec<Expectation> {
    let c = &s.claims;
    let mut out = Vec::new();
    if let Some(issuer) = &s.oidc.oidc_issuer {
        out.push(Expectation {
            audience: "citizen",
            issuer: issuer.clone(),
            scopes: ("oidc_scopes", split(&s.oidc.oidc_scopes)),
            claims: vec![
                ("oidc_claim_name", c.oidc_claim_name.clone()),
                ("oidc_claim_id_number", c.oidc_claim_id_number.clone()),
                ("oidc_claim_assurance", c.oidc_claim_assurance.clone()),
                ("oidc_claim_phone", c.oidc_claim_phone.clone()),
                ("oidc_claim_uscc", c.oidc_claim_uscc.clone()),
                (
                    "oidc_claim_enterprise_name",
                    c.oidc_claim_enterprise_name.clone(),
                ),
            ],
            acr_levels: s.acr_levels(),
            needs_assurance: true,
        });
    }
    if let (Some(issuer), Some(_)) = (s.staff_issuer(), &s.oidc.oidc_staff_client_id) {
        out.push(Expectation {
            audience: "staff",
            issuer: issuer.clone(),
            scopes: ("oidc_staff_scopes", split(&s.oidc.oidc_staff_scopes)),
            claims: vec![
                ("oidc_claim_name", c.oidc_claim_name.clone()),
                ("oidc_claim_roles", c.oidc_claim_roles.clone()),
                ("oidc_claim_department", c.oidc_claim_department.clone()),
                ("oidc_claim_service_hall", c.oidc_claim_service_hall.clone()),
                (
                    "oidc_claim_hall_departments",
                    c.oidc_claim_hall_departments.clone(),
                ),
            ],
            acr_levels: s.acr_levels(),
            needs_assurance: false,
        });
    }
    out
}

fn split(scopes: &str) -> Vec<String> {
    scopes.split_whitespace().map(str::to_owned).collect()
}

fn strings(doc: &Value, key: &str) -> Option<Vec<String>> {
    doc.get(key)?.as_array().map(|a| {
        a.iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    })
}

/// Checks a discovery document against what the gateway expects. Pure.
pub fn check_discovery(e: &Expectation, doc: &Value) -> Vec<Finding> {
    use Severity::*;
    let mut out = Vec::new();
    match doc.get("issuer").and_then(Value::as_str) {
        Some(i) if i == e.issuer => out.push(Finding::new(Ok, format!("issuer is {i}"))),
        Some(i) => out.push(Finding::new(
            Fail,
            format!(
                "the provider calls itself {i}, the configuration says {}: ID tokens will be refused (set the issuer exactly as the provider writes it)",
                e.issuer
            ),
        )),
        None => out.push(Finding::new(Fail, "the discovery document has no issuer")),
    }
    for key in ["authorization_endpoint", "token_endpoint", "jwks_uri"] {
        if doc.get(key).and_then(Value::as_str).is_none() {
            out.push(Finding::new(
                Fail,
                format!("the discovery document has no {key}"),
            ));
        }
    }
    let (setting, scopes) = &e.scopes;
    if !scopes.iter().any(|s| s == "openid") {
        out.push(Finding::new(
            Fail,
            format!("{setting} lacks `openid`: the provider will not issue an ID token"),
        ));
    }
    match strings(doc, "scopes_supported") {
        Some(supported) => {
            let unknown: Vec<&String> = scopes.iter().filter(|s| !supported.contains(s)).collect();
            if unknown.is_empty() {
                out.push(Finding::new(
                    Ok,
                    format!("scopes {} are supported", scopes.join(" ")),
                ));
            } else {
                for s in unknown {
                    out.push(Finding::new(
                        Fail,
                        format!(
                            "scope `{s}` ({setting}) is not among the provider's scopes_supported ({})",
                            supported.join(" ")
                        ),
                    ));
                }
            }
        }
        None => out.push(Finding::new(
            Note,
            "the provider does not publish scopes_supported; scopes not checked",
        )),
    }
    match strings(doc, "claims_supported") {
        Some(supported) => {
            let mut all = true;
            for (setting, claim) in &e.claims {
                if !supported.contains(claim) {
                    all = false;
                    out.push(Finding::new(
                        Fail,
                        format!(
                            "claim `{claim}` ({setting}) is not among the provider's claims_supported: logins that need it will be refused"
                        ),
                    ));
                }
            }
            if all {
                out.push(Finding::new(Ok, "every configured claim is supported"));
            }
        }
        None => out.push(Finding::new(
            Note,
            "the provider does not publish claims_supported; the claim mapping is checked only at login",
        )),
    }
    if e.needs_assurance
        && let Some(values) = strings(doc, "acr_values_supported")
    {
        let level = |v: &str| crate::auth::identity::assurance_level(Some(v), &e.acr_levels);
        let unmapped: Vec<&String> = values.iter().filter(|v| level(v) == 0).collect();
        if unmapped.is_empty() {
            out.push(Finding::new(
                Ok,
                "every announced assurance value maps to a level",
            ));
        } else {
            for v in unmapped {
                out.push(Finding::new(
                    Fail,
                    format!(
                        "assurance value `{v}` from acr_values_supported maps to no level: add it to oidc_acr_levels (`{v}=1`, `=2` or `=3`)"
                    ),
                ));
            }
        }
    }
    out
}

/// Fetches and checks one provider: the discovery document, then its key set.
pub async fn check_provider(http: &reqwest012::Client, e: &Expectation) -> Vec<Finding> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        e.issuer.trim_end_matches('/')
    );
    let doc = match fetch(http, &url).await {
        Ok(doc) => doc,
        Err(why) => {
            return vec![Finding::new(
                Severity::Fail,
                format!("cannot read the discovery document {url}: {why}"),
            )];
        }
    };
    let mut out = check_discovery(e, &doc);
    if let Some(jwks) = doc.get("jwks_uri").and_then(Value::as_str) {
        match fetch(http, jwks).await {
            Ok(set) if set["keys"].as_array().is_some_and(|k| !k.is_empty()) => {
                out.push(Finding::new(Severity::Ok, "the key set has keys"))
            }
            Ok(_) => out.push(Finding::new(
                Severity::Fail,
                format!("the key set {jwks} has no keys: no ID token can be verified"),
            )),
            Err(why) => out.push(Finding::new(
                Severity::Fail,
                format!("cannot read the key set {jwks}: {why}"),
            )),
        }
    }
    out
}

async fn fetch(http: &reqwest012::Client, url: &str) -> Result<Value, String> {
    let resp = http
        .get(url)
        .timeout(std::time::Duration::from_secs(5))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("HTTP {}", resp.status().as_u16()));
    }
    resp.json::<Value>()
        .await
        .map_err(|e| format!("not JSON: {e}"))
}

/// Checks every configured provider; the findings per audience.
pub async fn run(s: &Settings) -> Vec<(&'static str, String, Vec<Finding>)> {
    let http = reqwest012::Client::builder()
        .redirect(reqwest012::redirect::Policy::none())
        .build()
        .unwrap_or_default();
    let mut out = Vec::new();
    for e in expectations(s) {
        let findings = check_provider(&http, &e).await;
        out.push((e.audience, e.issuer.clone(), findings));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn expect() -> Expectation {
        Expectation {
            audience: "citizen",
            issuer: "https://idp.example".into(),
            scopes: ("oidc_scopes", split("openid profile onewindow")),
            claims: vec![
                ("oidc_claim_name", "name".into()),
                ("oidc_claim_id_number", "id_number".into()),
                ("oidc_claim_assurance", "acr".into()),
            ],
            acr_levels: vec![("urn:loa:2".into(), 2)],
            needs_assurance: true,
        }
    }

    fn doc() -> Value {
        json!({
            "issuer": "https://idp.example",
            "authorization_endpoint": "https://idp.example/a",
            "token_endpoint": "https://idp.example/t",
            "jwks_uri": "https://idp.example/k",
            "scopes_supported": ["openid", "profile", "onewindow"],
            "claims_supported": ["sub", "name", "id_number", "acr"],
            "acr_values_supported": ["urn:loa:2", "3"],
        })
    }

    fn fails(f: &[Finding]) -> Vec<&str> {
        f.iter()
            .filter(|f| f.severity == Severity::Fail)
            .map(|f| f.text.as_str())
            .collect()
    }

    #[test]
    fn a_matching_provider_passes() {
        assert!(fails(&check_discovery(&expect(), &doc())).is_empty());
    }

    #[test]
    fn each_mismatch_is_named() {
        let mut d = doc();
        d["issuer"] = json!("https://idp.example/");
        d["scopes_supported"] = json!(["openid", "profile"]);
        d["claims_supported"] = json!(["sub", "name", "acr"]);
        d["acr_values_supported"] = json!(["urn:loa:2", "urn:loa:high"]);
        let f = check_discovery(&expect(), &d);
        let f = fails(&f);
        assert_eq!(f.len(), 4, "{f:#?}");
        assert!(f[0].contains("calls itself https://idp.example/"));
        assert!(f.iter().any(|t| t.contains("scope `onewindow`")));
        assert!(
            f.iter()
                .any(|t| t.contains("claim `id_number` (oidc_claim_id_number)"))
        );
        assert!(f.iter().any(|t| t.contains("`urn:loa:high`")));
    }
}

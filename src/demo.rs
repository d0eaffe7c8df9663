//! `onewindow demo`: the gateway plus the development identity provider with demo
//! personas, wired together over real OpenID Connect, and two simulated department
//! back-ends ([`crate::demo_departments`]) that conclude their cases on their own. At
//! start it imports the demo base library (`reference-data/demo`), so the personas find
//! their own data to prefill from.
//! At every start it also plays the demo's cases ([`crate::demo_seed`]) through the
//! ordinary use cases, once (a second start adds nothing), and serves `/demo`: one link
//! per persona that logs them in.
//! Clearly labelled; `serve` never starts the development provider or the simulations.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use minijinja::context;
use secrecy::SecretString;
use serde::Serialize;

use crate::app::{AppState, Application, shutdown_signal};
use crate::auth::session::random_token;
use crate::config::Settings;
use crate::demo_departments::{self, SimConfig};
use crate::devidp::personas::{Persona, personas};
use crate::devidp::{self, DevClient};
use crate::domain::lang::Lang;
use crate::http::error::{AppError, AppResult, Message};
use crate::http::pages::PageCtx;

/// The public OpenID client of the demo: its presence is how a page knows it runs in a demo.
pub const DEMO_CLIENT_ID: &str = "onewindow-demo";

/// The default listen address and public URL, as `config.rs` has them.
const DEFAULT_PUBLIC_URL: &str = "http://127.0.0.1:8080/";

/// Whether these settings are the demo's (`onewindow demo` set them up).
pub fn is_demo(settings: &Settings) -> bool {
    settings.oidc.oidc_client_id.as_deref() == Some(DEMO_CLIENT_ID)
}

/// The public URL the demo uses: the configured one when it was set (it differs from the
/// default), else the listen address's (`0.0.0.0` and `[::]` reached as loopback), so that
/// changing `ONEWINDOW_LISTEN` alone keeps logins and the simulated departments working.
pub fn demo_public_url(public_url: &url::Url, listen: SocketAddr) -> url::Url {
    if public_url.as_str() != DEFAULT_PUBLIC_URL {
        return public_url.clone();
    }
    let host = match listen.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_owned(),
        ip if ip.is_unspecified() => "[::1]".to_owned(),
        std::net::IpAddr::V4(ip) => ip.to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
    };
    url::Url::parse(&format!("http://{host}:{}/", listen.port()))
        .unwrap_or_else(|_| public_url.clone())
}

/// Runs the demo until Ctrl-C or SIGTERM.
pub async fn run(mut settings: Settings, idp_listen: SocketAddr) -> anyhow::Result<()> {
    if settings.log.log_level == "info" {
        // The pull department asks its inbox every 2 s: keep one line per request out of
        // the way of the lines that tell the story (`RUST_LOG=info` brings them back).
        settings.log.log_level = "info,tower_http=warn".into();
    }
    crate::telemetry::init(&settings);
    // The demo is a development instance: without a configured key-encryption key it
    // generates one into its data directory.
    settings.keys.development_instance = true;
    settings.server.public_url =
        demo_public_url(&settings.server.public_url, settings.server.listen);
    let callback = settings
        .server
        .public_url
        .join("auth/callback")?
        .to_string();
    let home = settings.server.public_url.to_string();
    let (public_secret, staff_secret) = (random_token(), random_token());
    let client = |id: &str, secret: &str| DevClient {
        client_id: id.to_owned(),
        client_secret: secret.to_owned(),
        redirect_uris: vec![callback.clone()],
        post_logout_redirect_uris: vec![home.clone(), home.trim_end_matches('/').to_owned()],
    };
    let clients = vec![
        client("onewindow-demo", &public_secret),
        client("onewindow-demo-staff", &staff_secret),
    ];
    let (_idp, issuer, _task) = devidp::spawn(idp_listen, clients).await?;

    settings.oidc.oidc_issuer = Some(issuer.as_str().to_owned());
    settings.oidc.oidc_client_id = Some(DEMO_CLIENT_ID.into());
    settings.oidc.oidc_client_secret = Some(SecretString::from(public_secret));
    settings.oidc.oidc_staff_issuer = Some(issuer.as_str().to_owned());
    settings.oidc.oidc_staff_client_id = Some("onewindow-demo-staff".into());
    settings.oidc.oidc_staff_client_secret = Some(SecretString::from(staff_secret));
    settings.claims.oidc_claim_assurance = "acr".into();
    // The simulated departments listen on loopback http.
    settings.exchange.exchange_allow_http = true;

    tracing::warn!(
        idp = %issuer,
        "DEMO MODE: a development identity provider with made-up personas is running; never use this in production"
    );
    let region_sim = crate::demo_region::configure(&mut settings).await?;
    let app = Application::build(settings).await?;
    if let Some(b) = region_sim {
        crate::demo_region::serve(b, &home);
    }
    import_demo_data(&app.state()).await;
    let report = crate::demo_seed::seed(&app.state(), issuer.as_str()).await;
    tracing::info!("demo cases: {}", report.summary());
    for (key, why) in &report.failed {
        tracing::warn!("demo case {key} not made: {why}");
    }
    eprintln!("{}", banner(&home, issuer.as_str()));
    let sims = demo_departments::start(app.state(), SimConfig::default()).await?;
    eprintln!(
        "  演示部门 Simulated departments: 人社局 (signed push to {}) and 市场监管局 (pull inbox)\n  accept, review and conclude their new cases on their own, about 10 s after submission.\n",
        sims.push_endpoint().unwrap_or("-")
    );
    app.run_until(async move {
        shutdown_signal().await;
        sims.stop();
    })
    .await
}

/// What `onewindow demo` prints at start: where to go, and one login link per persona.
pub fn banner(home: &str, issuer: &str) -> String {
    let mut out = format!(
        "\n  演示模式 DEMO MODE — 开发用身份提供者 development identity provider: {issuer}\n  \
         打开 Open {home}\n  \
         一键登录演示身份 One-click demo logins: {home}demo\n\n"
    );
    for p in personas() {
        out.push_str(&format!(
            "    {:<16} {}{}\n",
            p.id,
            home,
            login_path(p).trim_start_matches('/')
        ));
    }
    out.push_str(
        "\n  Scripts: add &return_to=/api/v1/me to a login link to land on the JSON of the session.\n",
    );
    out
}

/// The page a persona starts on, by role: (path, catalogue key of its name).
fn landing(p: &Persona) -> (&'static str, &'static str) {
    if p.roles.contains(&"clerk") {
        ("/staff/cases", "demo.page_worklist")
    } else if p.roles.contains(&"department_officer") {
        ("/desk/cases", "demo.page_desk")
    } else if p.roles.contains(&"operator") {
        ("/ops", "demo.page_dashboard")
    } else {
        ("/me/cases", "demo.page_my_cases")
    }
}

/// The link that logs a persona in without the picker and lands on their main page.
pub fn login_path(p: &Persona) -> String {
    let login = if p.kind == "staff" {
        "/auth/staff/login"
    } else {
        "/auth/login"
    };
    let (to, _) = landing(p);
    format!(
        "{login}?login_hint={}&return_to={}",
        p.id,
        url::form_urlencoded::byte_serialize(to.as_bytes()).collect::<String>()
    )
}

/// One persona on the demo panel.
#[derive(Debug, Serialize)]
pub struct PersonaView {
    id: &'static str,
    name: &'static str,
    kind: &'static str,
    acr: &'static str,
    description: &'static str,
    href: String,
    lands_on: String,
}

/// The demo personas panel's values (`demo` of `demo_personas.html`), or `None` outside
/// the demo: a home page can pass it and include the panel.
pub fn personas_view(settings: &Settings, lang: Lang) -> Option<minijinja::Value> {
    if !is_demo(settings) {
        return None;
    }
    let view = |p: &'static Persona| {
        let (kz, ke) = p.kind_label();
        let (az, ae) = p.acr_label();
        let (_, key) = landing(p);
        PersonaView {
            id: p.id,
            name: p.name,
            kind: lang.pick(kz, ke),
            acr: lang.pick(az, ae),
            description: lang.pick(p.description_zh, p.description_en),
            href: login_path(p),
            lands_on: crate::http::pages::i18n::text(lang, key, &[]).unwrap_or_default(),
        }
    };
    let (staff, public): (Vec<_>, Vec<_>) = personas().iter().partition(|p| p.kind == "staff");
    Some(minijinja::Value::from_serialize(minijinja::context! {
        public => public.into_iter().map(view).collect::<Vec<_>>(),
        staff => staff.into_iter().map(view).collect::<Vec<_>>(),
    }))
}

/// The demo's pages: `/demo` (one link per persona; not found outside the demo).
pub fn routes() -> Router<AppState> {
    Router::new().route("/demo", get(demo_page))
}

async fn demo_page(State(app): State<AppState>, ctx: PageCtx) -> AppResult<Response> {
    let demo = personas_view(&app.settings, ctx.lang).ok_or_else(|| {
        AppError::NotFound(Message::new(
            "此页面仅在演示模式下提供。",
            "This page exists in demo mode only.",
        ))
    })?;
    Ok(ctx.render(
        StatusCode::OK,
        "demo.html",
        context! { demo => demo, demo_page => true },
    ))
}

/// The demo's base library: made-up residents, enterprises, credit records and e-licences
/// (`reference-data/demo`, the personas among them), so that a demo login has data to
/// prefill from. Imported at every start; rows already stored are not written again.
async fn import_demo_data(state: &AppState) {
    let dir = demo_data_dir();
    for (code, file) in [
        ("person", "person.csv"),
        ("enterprise", "enterprise.csv"),
        ("credit", "credit.csv"),
        ("elicence", "elicence.jsonl"),
    ] {
        let Some(resource) = state.catalogue.resource(code) else {
            tracing::warn!(
                resource = code,
                "demo data: no such resource in the catalogue"
            );
            continue;
        };
        let path = dir.join(file);
        match crate::sharing::import::import_file(
            &state.providers.base,
            &resource,
            &path,
            None,
            &|_| {},
        )
        .await
        {
            Ok(report) => {
                tracing::info!("demo data {}: {}", file, report.summary(code));
                for (line, reason) in &report.rejected {
                    tracing::warn!("demo data {file} line {line}: {reason}");
                }
            }
            Err(e) => tracing::warn!("demo data {} not imported: {e}", path.display()),
        }
    }
}

/// `reference-data/demo` under the working directory, or else in the source tree.
fn demo_data_dir() -> PathBuf {
    let here = Path::new("reference-data/demo");
    if here.is_dir() {
        here.to_path_buf()
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("reference-data/demo")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_url_follows_the_listen_address_unless_set() {
        let default = url::Url::parse(DEFAULT_PUBLIC_URL).expect("url");
        let at = |s: &str| s.parse::<SocketAddr>().expect("addr");
        assert_eq!(
            demo_public_url(&default, at("127.0.0.1:18480")).as_str(),
            "http://127.0.0.1:18480/"
        );
        assert_eq!(
            demo_public_url(&default, at("0.0.0.0:9000")).as_str(),
            "http://127.0.0.1:9000/"
        );
        assert_eq!(
            demo_public_url(&default, at("127.0.0.1:8080")).as_str(),
            DEFAULT_PUBLIC_URL
        );
        let set = url::Url::parse("https://zwfw.example.gov.cn/").expect("url");
        assert_eq!(demo_public_url(&set, at("0.0.0.0:9000")), set);
        assert_eq!(
            Settings::default().server.public_url.as_str(),
            DEFAULT_PUBLIC_URL,
            "config.rs's default moved: follow it here"
        );
    }

    #[test]
    fn every_persona_has_a_one_click_login_to_their_main_page() {
        let banner = banner("http://127.0.0.1:18480/", "http://127.0.0.1:18481");
        for p in personas() {
            let link = login_path(p);
            assert!(link.contains(&format!("login_hint={}", p.id)), "{link}");
            assert!(banner.contains(&link[1..]), "{banner}");
        }
        let sun = crate::devidp::personas::find_persona("clerk-sun").expect("clerk");
        assert_eq!(
            login_path(sun),
            "/auth/staff/login?login_hint=clerk-sun&return_to=%2Fstaff%2Fcases"
        );
        let wang = crate::devidp::personas::find_persona("citizen-wang").expect("citizen");
        assert_eq!(
            login_path(wang),
            "/auth/login?login_hint=citizen-wang&return_to=%2Fme%2Fcases"
        );
    }

    #[test]
    fn the_panel_is_for_the_demo_only_and_in_one_language() {
        let mut s = Settings::default();
        assert!(personas_view(&s, Lang::En).is_none());
        s.oidc.oidc_client_id = Some(DEMO_CLIENT_ID.into());
        let en = personas_view(&s, Lang::En).expect("demo").to_string();
        assert!(en.contains("Log in") || en.contains("My cases"), "{en}");
        assert!(!en.contains("我的办件"), "{en}");
        let ctx = minijinja::context! { demo => personas_view(&s, Lang::En), demo_page => true, lang => "en" };
        let html = crate::http::pages::TEMPLATES
            .get_template("demo.html")
            .expect("template")
            .render(ctx)
            .expect("renders");
        assert!(
            html.contains(r#"<span lang="zh-CN">王小明</span> · Log in"#),
            "{html}"
        );
        assert!(html.contains("login_hint=operator-wu"), "{html}");
    }
}

//! `onewindow demo`: the gateway plus the development identity provider with demo
//! personas, wired together over real OpenID Connect, and two simulated department
//! back-ends ([`crate::demo_departments`]) that conclude their cases on their own. At
//! start it imports the demo base library (`reference-data/demo`), so the personas find
//! their own data to prefill from.
//! Clearly labelled; `serve` never starts the development provider or the simulations.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use secrecy::SecretString;

use crate::app::{AppState, Application, shutdown_signal};
use crate::auth::session::random_token;
use crate::config::Settings;
use crate::demo_departments::{self, SimConfig};
use crate::devidp::{self, DevClient};

/// Runs the demo until Ctrl-C or SIGTERM.
pub async fn run(mut settings: Settings, idp_listen: SocketAddr) -> anyhow::Result<()> {
    if settings.log.log_level == "info" {
        // The pull department asks its inbox every 2 s: keep one line per request out of
        // the way of the lines that tell the story (`RUST_LOG=info` brings them back).
        settings.log.log_level = "info,tower_http=warn".into();
    }
    crate::telemetry::init(&settings);
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
    settings.oidc.oidc_client_id = Some("onewindow-demo".into());
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
    eprintln!(
        "\n  演示模式 DEMO MODE — 开发用身份提供者 development identity provider: {issuer}\n  打开 Open {home} and log in as a demo persona (e.g. citizen-wang).\n  Scripts: {home}auth/login?login_hint=<persona>&return_to=/api/v1/me logs in without the picker.\n"
    );
    let app = Application::build(settings).await?;
    import_demo_data(&app.state()).await;
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
            resource,
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

//! `onewindow demo`: the gateway plus the development identity provider with demo
//! personas, wired together over real OpenID Connect. Clearly labelled; `serve` never
//! starts the development provider.

use std::net::SocketAddr;

use secrecy::SecretString;

use crate::app::{Application, shutdown_signal};
use crate::auth::session::random_token;
use crate::config::Settings;
use crate::devidp::{self, DevClient};

/// Runs the demo until Ctrl-C or SIGTERM.
pub async fn run(mut settings: Settings, idp_listen: SocketAddr) -> anyhow::Result<()> {
    crate::telemetry::init(&settings);
    let callback = settings.public_url.join("auth/callback")?.to_string();
    let home = settings.public_url.to_string();
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

    settings.oidc_issuer = Some(issuer.as_str().to_owned());
    settings.oidc_client_id = Some("onewindow-demo".into());
    settings.oidc_client_secret = Some(SecretString::from(public_secret));
    settings.oidc_staff_issuer = Some(issuer.as_str().to_owned());
    settings.oidc_staff_client_id = Some("onewindow-demo-staff".into());
    settings.oidc_staff_client_secret = Some(SecretString::from(staff_secret));
    settings.oidc_claim_assurance = "acr".into();

    tracing::warn!(
        idp = %issuer,
        "DEMO MODE: a development identity provider with made-up personas is running; never use this in production"
    );
    eprintln!(
        "\n  演示模式 DEMO MODE — 开发用身份提供者 development identity provider: {issuer}\n  打开 Open {home} and log in as a demo persona (e.g. citizen-wang).\n  Scripts: {home}auth/login?login_hint=<persona>&return_to=/api/v1/me logs in without the picker.\n"
    );
    let app = Application::build(settings).await?;
    app.run_until(shutdown_signal()).await
}

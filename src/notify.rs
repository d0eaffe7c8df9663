//! Notification mail: every in-app notice to an applicant who has an email address is
//! also sent through the configured SMTP relay, after the change that caused it has been
//! committed. Sending never holds up or undoes the change; the notice records whether
//! the mail went out (`email_state`: sent | failed | none).

use lettre::message::{Mailbox, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

use crate::app::AppState;
use crate::config::Settings;
use crate::store::NoticeRow;

/// The SMTP relay and the sender.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    /// A mailer when `smtp_url` is configured.
    pub fn from_settings(s: &Settings) -> anyhow::Result<Option<Mailer>> {
        let Some(url) = &s.mail.smtp_url else {
            return Ok(None);
        };
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
            .map_err(|e| anyhow::anyhow!("smtp_url: {e}"))?
            .timeout(Some(std::time::Duration::from_secs(10)))
            .build();
        let from = s
            .mail
            .mail_from
            .parse()
            .map_err(|e| anyhow::anyhow!("mail_from: {e}"))?;
        Ok(Some(Mailer { transport, from }))
    }

    /// Sends one bilingual message.
    pub async fn send(&self, to: &str, notice: &NoticeRow) -> anyhow::Result<()> {
        let to: Mailbox = to.parse()?;
        let body = format!(
            "{}\n\n{}\n\n—— 呼伦贝尔市一网通办 / Hulunbuir One-Window Services\n（本邮件由系统自动发送，请勿回复。This message was sent automatically; please do not reply.）\n",
            notice.body_zh, notice.body_en
        );
        let msg = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(format!("{} / {}", notice.title_zh, notice.title_en))
            .header(ContentType::TEXT_PLAIN)
            .body(body)?;
        self.transport.send(msg).await?;
        Ok(())
    }
}

/// Sends mail for committed notices in the background.
pub fn dispatch(app: &AppState, notices: Vec<NoticeRow>) {
    if app.mailer.is_none() || notices.is_empty() {
        return;
    }
    let app = app.clone();
    tokio::spawn(async move {
        for n in notices {
            let state = match app.store.account(n.account_id).await {
                Ok(Some(account)) => match (&app.mailer, account.email) {
                    (Some(m), Some(to)) => match m.send(&to, &n).await {
                        Ok(()) => "sent",
                        Err(e) => {
                            // the address is personal data: not logged
                            tracing::warn!(notice = %n.id, error = %e, "notification mail failed");
                            "failed"
                        }
                    },
                    _ => "none",
                },
                _ => "none",
            };
            if let Err(e) = app.store.set_notice_email_state(n.id, state).await {
                tracing::warn!(notice = %n.id, error = %e, "cannot record the mail state");
            }
        }
    });
}

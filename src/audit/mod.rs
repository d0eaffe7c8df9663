//! The tamper-evident audit trail (审计留痕): every read of personal data
//! (`data_access`, one chain per subject, see `sharing::audit`) and every staff,
//! operator and department action (`audit_events`, one chain per target: a case, a
//! department's settings, an information system, a filing).
//!
//! - **Keyed links.** Each record's link is HMAC-SHA256, under a key derived from the
//!   configured audit secret, over the previous link, its position, id and canonical
//!   body. The key is never stored in the database: whoever can write the tables cannot
//!   recompute a link after an edit or an insertion.
//! - **Signed checkpoints.** Periodically (`audit_checkpoint_secs`) the gateway signs the
//!   heads of all chains (a Merkle root over them, as Certificate Transparency's signed
//!   tree heads) with an Ed25519 key derived from the same secret. Checkpoints link to the
//!   one before, are stored in `audit_checkpoints` and appended to
//!   `<data_dir>/audit/checkpoints.jsonl`. A chain shorter than a checkpoint says (the
//!   newest records deleted), or a checkpointed record not as signed (rewritten even with
//!   the key), is reported; deleting checkpoints from the table is seen against the file.
//! - **No global lock.** Appends lock only their own chain; there is no single head.
//! - **Legacy.** Records of earlier versions (plain SHA-256 links) stay as they are and
//!   verify as legacy, only at the start of their chain and only as far as the first
//!   checkpoint (taken at the first start after migration 0021) covered them.
//!
//! [`verify`] checks everything (`onewindow audit verify`); [`checkpoint`] signs.

pub mod chain;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use serde_json::Value;
use sha2::Sha256;

use crate::config::Settings;
use crate::state::AppState;
use crate::store::{AuditTable, NewAuditEvent, Store, StoreError};
use crate::usecases::Actor;
use chain::{Checkpoint, Heads, LinkRow, verify_segment};

/// The keys of the audit trail, derived from the configured secret.
pub struct AuditKeys {
    link: Vec<u8>,
    signing: ed25519_dalek::SigningKey,
    file: PathBuf,
}

impl std::fmt::Debug for AuditKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuditKeys(public {})", self.public_hex())
    }
}

fn derive(secret: &[u8], label: &str) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(label.as_bytes());
    mac.finalize().into_bytes().into()
}

impl AuditKeys {
    /// The keys of a secret, with the checkpoint file in `dir`.
    pub fn from_secret(secret: &[u8], dir: &Path) -> AuditKeys {
        AuditKeys {
            link: derive(secret, "onewindow audit link v1").to_vec(),
            signing: ed25519_dalek::SigningKey::from_bytes(&derive(
                secret,
                "onewindow audit checkpoint v1",
            )),
            file: dir.join("checkpoints.jsonl"),
        }
    }

    /// The HMAC key of the records' links.
    pub fn link_key(&self) -> &[u8] {
        &self.link
    }

    /// The checkpoints' public key (hex), which anyone may hold to check signatures.
    pub fn public_hex(&self) -> String {
        hex::encode(self.signing.verifying_key().as_bytes())
    }

    /// The append-only copy of the checkpoints.
    pub fn checkpoint_file(&self) -> &Path {
        &self.file
    }
}

/// Reads an audit secret: at least 32 bytes, in hex or base64.
pub fn parse_secret(s: &str) -> Result<Vec<u8>, String> {
    let s = s.trim();
    let bytes = hex::decode(s)
        .ok()
        .or_else(|| base64::Engine::decode(&base64::engine::general_purpose::STANDARD, s).ok())
        .ok_or("is neither hex nor base64")?;
    if bytes.len() < 32 {
        return Err(format!("has {} bytes; at least 32 are needed", bytes.len()));
    }
    Ok(bytes)
}

/// The audit keys from `audit_secret`, else `audit_secret_file`, else a secret generated
/// into `<data_dir>/audit/secret` (0600) on first start, with a warning: a development
/// instance, the demo and the tests; production configures one kept apart from the
/// database.
pub fn load_keys(settings: &Settings) -> anyhow::Result<AuditKeys> {
    let dir = settings.server.data_dir.join("audit");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let secret = if let Some(s) = &settings.audit.audit_secret {
        parse_secret(s.expose_secret()).map_err(|e| anyhow::anyhow!("audit_secret {e}"))?
    } else if let Some(f) = &settings.audit.audit_secret_file {
        let text = std::fs::read_to_string(f)
            .with_context(|| format!("cannot read audit_secret_file {}", f.display()))?;
        parse_secret(&text).map_err(|e| anyhow::anyhow!("audit_secret_file {e}"))?
    } else {
        let f = dir.join("secret");
        if !f.exists() {
            tracing::warn!(
                file = %f.display(),
                "audit_secret is not set: a secret was generated into the data directory; set audit_secret or audit_secret_file to keep it apart from the data"
            );
            let mut o = std::fs::OpenOptions::new();
            o.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
            match o.open(&f) {
                Ok(mut file) => {
                    file.write_all(hex::encode(rand::random::<[u8; 32]>()).as_bytes())?;
                    file.sync_all()?;
                }
                // another process of this data directory wrote it first
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e).context("cannot write the audit secret"),
            }
        }
        let text =
            std::fs::read_to_string(&f).with_context(|| format!("cannot read {}", f.display()))?;
        parse_secret(&text).map_err(|e| anyhow::anyhow!("{} {e}", f.display()))?
    };
    Ok(AuditKeys::from_secret(&secret, &dir))
}

/// Who acted, as an action record names them (never by name: by kind and id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Who {
    /// `applicant`, `clerk`, `officer`, `department`, `operator` or `system`.
    pub kind: &'static str,
    /// Account id, or `token:<id>` of a department system.
    pub id: Option<String>,
}

impl Who {
    /// The actor of a use case.
    pub fn of(actor: &Actor) -> Who {
        let kind = match actor {
            Actor::Applicant { .. } => "applicant",
            Actor::Clerk { .. } => "clerk",
            Actor::Officer { .. } => "officer",
            Actor::Operator { .. } => "operator",
            Actor::DepartmentSystem { .. } => "department",
        };
        Who {
            kind,
            id: Some(actor.id()),
        }
    }

    /// The gateway itself (the worker, the command line).
    pub fn system(id: &str) -> Who {
        Who {
            kind: "system",
            id: Some(id.to_owned()),
        }
    }
}

/// Appends one action to its target's chain. Callers record before they answer: an
/// action that cannot be recorded is not reported as done.
pub async fn action(
    app: &AppState,
    who: &Who,
    action: &str,
    chain: String,
    target: &str,
    detail: Value,
) -> Result<(), StoreError> {
    record(app.store.as_ref(), who, action, chain, target, detail).await
}

/// [`action`] on a store alone (the command line).
pub async fn record(
    store: &dyn Store,
    who: &Who,
    action: &str,
    chain: String,
    target: &str,
    detail: Value,
) -> Result<(), StoreError> {
    store
        .append_audit_events(&[NewAuditEvent {
            chain,
            at: Utc::now(),
            actor_kind: who.kind.to_owned(),
            actor_id: who.id.clone(),
            action: action.to_owned(),
            target: target.to_owned(),
            detail,
        }])
        .await?;
    metrics::counter!("onewindow_audit_actions_total", "action" => action.to_owned()).increment(1);
    Ok(())
}

/// Records a material file handed out of a case (before it is).
pub async fn download(
    app: &AppState,
    who: &Who,
    case_no: &str,
    upload: &crate::store::UploadRow,
) -> Result<(), StoreError> {
    action(
        app,
        who,
        "material.download",
        case_chain(case_no),
        case_no,
        serde_json::json!({ "upload": upload.id }),
    )
    .await
}

/// Records a dead-lettered event queued again.
pub async fn redelivered(
    store: &dyn Store,
    who: &Who,
    event: uuid::Uuid,
) -> Result<(), StoreError> {
    record(
        store,
        who,
        "delivery.redeliver",
        format!("event:{event}"),
        &event.to_string(),
        Value::Null,
    )
    .await
}

/// The chain of a case's actions.
pub fn case_chain(case_no: &str) -> String {
    format!("case:{case_no}")
}

/// Whether one chain's records link up under the key (what a subject's own page shows;
/// legacy records are taken as the start of the chain here, the bound the first
/// checkpoint sets and the checkpoints themselves are [`verify`]'s).
pub async fn chain_intact(app: &AppState, chain: &str) -> Result<bool, StoreError> {
    let rows = app.store.audit_chain_from(chain, 1).await?;
    Ok(verify_segment(&app.audit.link, None, &rows, i64::MAX).is_ok())
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// Every record and checkpoint is as written.
    Intact {
        /// Records in all chains.
        records: i64,
        /// Chains.
        chains: i64,
        /// The last checkpoint: position and time.
        last_checkpoint: Option<(i64, DateTime<Utc>)>,
    },
    /// The first bad record or checkpoint.
    Bad {
        /// The chain (`access/…`, `event/…`, or `checkpoints`).
        chain: String,
        /// Its position.
        seq: i64,
        /// What is wrong.
        problem: String,
    },
}

impl Report {
    /// Whether nothing was found wrong.
    pub fn is_intact(&self) -> bool {
        matches!(self, Report::Intact { .. })
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Report::Intact {
                records,
                chains,
                last_checkpoint,
            } => {
                write!(f, "intact, {records} records in {chains} chains, ")?;
                match last_checkpoint {
                    Some((seq, at)) => write!(
                        f,
                        "last checkpoint at {} (#{seq})",
                        at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                    ),
                    None => write!(f, "no checkpoint yet"),
                }
            }
            Report::Bad {
                chain,
                seq,
                problem,
            } => write!(f, "BAD: chain {chain}, record {seq}: {problem}"),
        }
    }
}

const CHECKPOINTS: &str = "checkpoints";

fn bad(chain: &str, seq: i64, problem: impl ToString) -> Report {
    Report::Bad {
        chain: chain.to_owned(),
        seq,
        problem: problem.to_string(),
    }
}

/// The checkpoints in the file, if it exists.
fn file_checkpoints(path: &Path) -> anyhow::Result<Vec<Checkpoint>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l).context("a line of the checkpoint file is not a checkpoint")
        })
        .collect()
}

/// How far each chain may hold legacy (plain-hash) records: what the first checkpoint
/// signed of it; everything while there is no checkpoint yet.
fn legacy_limits(cps: &[Checkpoint]) -> impl Fn(&str) -> i64 + '_ {
    let first: Option<BTreeMap<&str, i64>> = cps
        .first()
        .map(|c| c.heads.iter().map(|(n, s, _)| (n.as_str(), *s)).collect());
    move |chain| match &first {
        None => i64::MAX,
        Some(m) => m.get(chain).copied().unwrap_or(0),
    }
}

/// Rows read per query while verifying.
const PAGE: i64 = 2000;

/// Checks the whole trail: the checkpoints (signatures, order, roots) against the
/// configured key and the checkpoint file; every record of every chain (positions, links,
/// HMACs); and every chain against the last checkpoint (nothing deleted, nothing
/// rewritten). Answers the first problem found, or the counts.
pub async fn verify(store: &dyn Store, keys: &AuditKeys) -> anyhow::Result<Report> {
    let cps = store.audit_checkpoints().await?;
    let signed = match chain::replay(&keys.signing.verifying_key(), &cps) {
        Ok(h) => h,
        Err((seq, f)) => return Ok(bad(CHECKPOINTS, seq, f)),
    };
    let by_seq: BTreeMap<i64, &Checkpoint> = cps.iter().map(|c| (c.seq, c)).collect();
    for c in file_checkpoints(keys.checkpoint_file())? {
        match by_seq.get(&c.seq) {
            Some(t) if **t == c => {}
            Some(_) => {
                return Ok(bad(
                    CHECKPOINTS,
                    c.seq,
                    "differs from the copy in the checkpoint file: rewritten",
                ));
            }
            None => {
                return Ok(bad(
                    CHECKPOINTS,
                    c.seq,
                    "is in the checkpoint file but not in the database: checkpoints were deleted",
                ));
            }
        }
    }
    let legacy = legacy_limits(&cps);
    let (mut records, mut chains) = (0i64, 0i64);
    let mut seen: BTreeMap<String, i64> = BTreeMap::new();
    for table in [AuditTable::Access, AuditTable::Events] {
        let mut after: Option<(String, i64)> = None;
        let mut state: Option<(String, (i64, String, bool))> = None;
        loop {
            let rows = store.audit_links(table, after.clone(), PAGE).await?;
            let Some(last) = rows.last() else { break };
            after = Some((last.chain[table.prefix().len()..].to_owned(), last.seq));
            for r in &rows {
                let from = match &state {
                    Some((c, s)) if *c == r.chain => Some(s.clone()),
                    _ => {
                        chains += 1;
                        None
                    }
                };
                match verify_segment(&keys.link, from, std::slice::from_ref(r), legacy(&r.chain)) {
                    Ok(s) => state = Some((r.chain.clone(), s)),
                    Err((seq, f)) => return Ok(bad(&r.chain, seq, f)),
                }
                if let Some((s, h)) = signed.get(&r.chain)
                    && *s == r.seq
                    && *h != r.hash
                {
                    let cp = last_signing(&cps, &r.chain);
                    return Ok(bad(
                        &r.chain,
                        r.seq,
                        chain::Fault::NotAsSigned { checkpoint: cp },
                    ));
                }
                records += 1;
                seen.insert(r.chain.clone(), r.seq);
            }
        }
    }
    for (c, (s, _)) in &signed {
        let found = seen.get(c).copied().unwrap_or(0);
        if found < *s {
            return Ok(bad(
                c,
                found + 1,
                chain::Fault::Truncated {
                    checkpoint: last_signing(&cps, c),
                    signed: *s,
                    found,
                },
            ));
        }
    }
    Ok(Report::Intact {
        records,
        chains,
        last_checkpoint: cps.last().map(|c| (c.seq, c.at)),
    })
}

/// The last checkpoint that moved a chain's head.
fn last_signing(cps: &[Checkpoint], chain: &str) -> i64 {
    cps.iter()
        .rev()
        .find(|c| c.heads.iter().any(|(n, _, _)| n == chain))
        .map(|c| c.seq)
        .unwrap_or(0)
}

/// Signs a checkpoint of every chain's head, when any moved since the last one (or there
/// is none yet). Refuses, with the reason, when the trail does not verify from the last
/// checkpoint on: new records are checked before they are signed. Answers the new
/// checkpoint, or `None` when there was nothing new (or another instance signed first).
pub async fn checkpoint(
    store: &dyn Store,
    keys: &AuditKeys,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<Checkpoint>> {
    let cps = store.audit_checkpoints().await?;
    let old = chain::replay(&keys.signing.verifying_key(), &cps)
        .map_err(|(seq, f)| anyhow::anyhow!("checkpoint {seq} {f}; not signing"))?;
    let current: Heads = store
        .audit_heads()
        .await?
        .into_iter()
        .map(|(c, s, h)| (c, (s, h)))
        .collect();
    for (c, (s, _)) in &old {
        let found = current.get(c).map(|(n, _)| *n).unwrap_or(0);
        if found < *s {
            anyhow::bail!("chain {c} has {found} records, {s} were signed; not signing");
        }
    }
    if !cps.is_empty() && current == old {
        return Ok(None);
    }
    let legacy = legacy_limits(&cps);
    for (c, (s, h)) in &current {
        let from = old.get(c);
        if from.is_some_and(|f| f.0 == *s && f.1 == *h) {
            continue;
        }
        let start = from.map(|f| f.0).unwrap_or(1);
        let rows: Vec<LinkRow> = store
            .audit_chain_from(c, start)
            .await?
            .into_iter()
            .filter(|r| r.seq <= *s)
            .collect();
        let (state, rest) = match from {
            Some((fs, fh)) => {
                let first = rows.first().filter(|r| r.seq == *fs && r.hash == *fh);
                let Some(first) = first else {
                    anyhow::bail!("chain {c}: record {fs} is not as signed; not signing");
                };
                (
                    Some((*fs, fh.clone(), first.link == chain::LINK_HMAC)),
                    &rows[1..],
                )
            }
            None => (None, &rows[..]),
        };
        let last = verify_segment(&keys.link, state, rest, legacy(c))
            .map_err(|(seq, f)| anyhow::anyhow!("chain {c}, record {seq}: {f}; not signing"))?;
        if last.0 != *s || last.1 != *h {
            anyhow::bail!("chain {c} changed while it was checked; not signing");
        }
    }
    let cp = Checkpoint::sign(&keys.signing, cps.last(), &old, &current, now);
    if !store.insert_audit_checkpoint(&cp).await? {
        return Ok(None);
    }
    append_to_file(keys.checkpoint_file(), &cp)?;
    metrics::counter!("onewindow_audit_checkpoints_total").increment(1);
    Ok(Some(cp))
}

fn append_to_file(path: &Path, cp: &Checkpoint) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let mut line = serde_json::to_string(cp)?;
    line.push('\n');
    f.write_all(line.as_bytes())?;
    f.sync_data()?;
    Ok(())
}

/// Signs checkpoints every `audit_checkpoint_secs` until cancelled (the first at once).
pub async fn run_checkpoints(app: AppState, token: tokio_util::sync::CancellationToken) {
    let every = std::time::Duration::from_secs(app.settings.audit.audit_checkpoint_secs.max(1));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = token.cancelled() => break,
            _ = tick.tick() => {
                match checkpoint(app.store.as_ref(), &app.audit, Utc::now()).await {
                    Ok(Some(cp)) => tracing::debug!(seq = cp.seq, chains = cp.chains, records = cp.records, "audit checkpoint signed"),
                    Ok(None) => {}
                    Err(e) => {
                        metrics::counter!("onewindow_audit_checkpoint_refusals_total").increment(1);
                        tracing::error!(error = %format!("{e:#}"), "audit checkpoint refused: run `onewindow audit verify`");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_hex_or_base64_of_at_least_32_bytes() {
        assert_eq!(parse_secret(&"ab".repeat(32)).map(|k| k.len()), Ok(32));
        let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [9u8; 40]);
        assert_eq!(parse_secret(&b64).map(|k| k.len()), Ok(40));
        assert!(parse_secret("abcd").is_err());
        assert!(parse_secret("not a key!").is_err());
    }

    #[test]
    fn the_two_keys_differ_and_depend_on_the_secret() {
        let a = AuditKeys::from_secret(&[1; 32], Path::new("/tmp"));
        let b = AuditKeys::from_secret(&[2; 32], Path::new("/tmp"));
        assert_ne!(a.link_key(), b.link_key());
        assert_ne!(a.public_hex(), b.public_hex());
        assert_ne!(a.link_key(), a.signing.to_bytes().as_slice());
        assert!(format!("{a:?}").contains(&a.public_hex()));
        assert!(!format!("{a:?}").contains(&hex::encode(a.link_key())));
    }

    #[test]
    fn reports_say_intact_with_counts_or_name_the_bad_record() {
        let t = DateTime::from_timestamp(1_700_000_000, 0).expect("time");
        let ok = Report::Intact {
            records: 5,
            chains: 2,
            last_checkpoint: Some((3, t)),
        };
        assert_eq!(
            ok.to_string(),
            "intact, 5 records in 2 chains, last checkpoint at 2023-11-14T22:13:20Z (#3)"
        );
        let b = bad("event/case:1", 4, chain::Fault::BadLink);
        assert!(!b.is_intact());
        assert!(
            b.to_string()
                .starts_with("BAD: chain event/case:1, record 4: its HMAC")
        );
    }
}

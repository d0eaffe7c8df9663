//! Personal-data keys by id, and `onewindow keys rotate-data`: re-sealing every sealed
//! value (case, account, draft and session columns, the base library, materials) under a
//! new data key while the gateway keeps serving.
//!
//! A key's life (`data_keys.state`): **next** (every instance reads with it, none seals
//! yet) → **current** (new values are sealed under it) → **retiring** (read only; its
//! values are being re-sealed) → **retired** (its key material erased). The legacy key
//! (id `""`, from before keys had ids: `personal_data_key`, or the one kept in
//! `secrets`) is current until the first rotation. Running instances reload the keys
//! every `data_key_refresh_secs`.
//!
//! A rotation:
//! 1. adds a new key as *next* and waits `settle` (every instance learns it);
//! 2. makes it *current* and the old one *retiring*, and waits `settle` again (every
//!    instance seals under the new key);
//! 3. re-seals in batches (rows whose value changes meanwhile are left: the writer
//!    sealed them under the current key), then passes again until a pass finds nothing;
//! 4. retires the old keys.
//!
//! Interrupted, it resumes: a run with a rotation under way continues it (no new key),
//! and re-sealing skips values already under the current key.

use std::time::Duration;

use anyhow::Context;
use chrono::Utc;

use crate::sharing::seal::Sealer;
use crate::state::AppState;
use crate::store::Store;

/// Loads the data keys from the store into the sealer (at start, and periodically so a
/// rotation reaches every instance).
pub async fn refresh(store: &dyn Store, sealer: &Sealer) -> anyhow::Result<()> {
    let rows = store
        .data_keys()
        .await
        .context("cannot load the personal-data keys")?;
    let legacy_retired = rows
        .iter()
        .any(|r| r.kid.is_empty() && r.state == "retired");
    let keys: Vec<(String, [u8; 32])> = rows
        .iter()
        .filter(|r| r.state != "retired" && !r.kid.is_empty())
        .filter_map(|r| r.key.map(|k| (r.kid.clone(), k)))
        .collect();
    // The newest current key (two are current only for a moment during a promotion).
    let current = rows
        .iter()
        .rev()
        .find(|r| r.state == "current")
        .map(|r| r.kid.clone())
        .unwrap_or_default();
    sealer
        .set_keys(&current, &keys, !legacy_retired)
        .map_err(|e| anyhow::anyhow!("personal-data keys: {e}"))
}

/// How a rotation is run.
#[derive(Debug, Clone, Copy)]
pub struct RotateOptions {
    /// How long to wait for every instance to reload the keys (at least
    /// `data_key_refresh_secs`; 0 when no other instance runs).
    pub settle: Duration,
    /// Rows per statement.
    pub batch: i64,
}

/// What a rotation did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RotateReport {
    /// The key everything is sealed under now.
    pub current: String,
    /// Values re-sealed, by `table.column` (`materials` for files), over all passes.
    pub resealed: Vec<(String, u64)>,
    /// Values looked at in the first pass.
    pub seen: u64,
    /// The keys retired.
    pub retired: Vec<String>,
}

/// Re-seals every personal value under a new data key (or continues a rotation under
/// way); `say` receives progress lines.
pub async fn rotate_data(
    state: &AppState,
    opts: RotateOptions,
    say: &mut (dyn FnMut(String) + Send),
) -> anyhow::Result<RotateReport> {
    let store = state.store.as_ref();
    let sealer = state.sealer.as_ref();
    refresh(store, sealer).await?;
    let rows = store.data_keys().await?;
    let under_way = rows
        .iter()
        .any(|r| r.state == "next" || r.state == "retiring");
    if under_way {
        say("a rotation is under way: continuing it".into());
    } else {
        let kid = format!(
            "{}-{}",
            Utc::now().format("%Y%m%d%H%M%S"),
            hex::encode(rand::random::<[u8; 2]>())
        );
        store
            .add_data_key(&kid, &rand::random::<[u8; 32]>(), "next", Utc::now())
            .await?;
        say(format!(
            "new data key {kid} added; waiting {}s for every instance to load it",
            opts.settle.as_secs()
        ));
        refresh(store, sealer).await?;
        tokio::time::sleep(opts.settle).await;
    }
    let rows = store.data_keys().await?;
    if let Some(next) = rows.iter().rev().find(|r| r.state == "next") {
        let old = rows
            .iter()
            .rev()
            .find(|r| r.state == "current")
            .map(|r| r.kid.clone())
            .unwrap_or_default();
        store
            .set_data_key_state(&next.kid, "current", Utc::now())
            .await?;
        store
            .set_data_key_state(&old, "retiring", Utc::now())
            .await?;
        refresh(store, sealer).await?;
        say(format!(
            "data key {} is current (the previous one, {}, is retiring); waiting {}s for every instance to seal with it",
            next.kid,
            if old.is_empty() {
                "the legacy key"
            } else {
                &old
            },
            opts.settle.as_secs()
        ));
        tokio::time::sleep(opts.settle).await;
    }
    let mut report = RotateReport {
        current: sealer.current_kid(),
        ..RotateReport::default()
    };
    for pass in 1..=5 {
        refresh(store, sealer).await?;
        let mut changed = 0;
        for (column, counts) in store.reseal_columns(opts.batch).await? {
            if pass == 1 {
                report.seen += counts.seen;
                say(format!(
                    "{column}: {} sealed values, {} re-sealed",
                    counts.seen, counts.resealed
                ));
            }
            changed += counts.resealed;
            add(&mut report.resealed, &column, counts.resealed);
        }
        let (files, resealed) = reseal_materials(state, opts.batch).await?;
        if pass == 1 {
            report.seen += files;
            say(format!("materials: {files} files, {resealed} re-sealed"));
        }
        changed += resealed;
        add(&mut report.resealed, "materials", resealed);
        if changed == 0 {
            let rows = store.data_keys().await?;
            for r in rows.iter().filter(|r| r.state == "retiring") {
                store
                    .set_data_key_state(&r.kid, "retired", Utc::now())
                    .await?;
                if r.kid.is_empty() {
                    // The legacy key kept in the database is no longer needed.
                    store
                        .delete_secret(crate::sharing::seal::DATA_KEY_NAME)
                        .await?;
                }
                report.retired.push(r.kid.clone());
            }
            refresh(store, sealer).await?;
            say(format!(
                "done: everything is sealed under {}; retired: {}",
                report.current,
                if report.retired.is_empty() {
                    "none".to_owned()
                } else {
                    report
                        .retired
                        .iter()
                        .map(|k| if k.is_empty() { "the legacy key" } else { k })
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ));
            if report.retired.iter().any(String::is_empty)
                && state.settings.database.personal_data_key.is_some()
            {
                say(
                    "personal_data_key is no longer needed: remove it from the configuration"
                        .into(),
                );
            }
            return Ok(report);
        }
        say(format!(
            "pass {pass}: {changed} values re-sealed; checking again"
        ));
    }
    anyhow::bail!(
        "values under the old key keep appearing (an instance that has not reloaded the keys?): run `onewindow keys rotate-data` again"
    )
}

fn add(v: &mut Vec<(String, u64)>, what: &str, n: u64) {
    match v.iter_mut().find(|(k, _)| k == what) {
        Some((_, m)) => *m += n,
        None => v.push((what.to_owned(), n)),
    }
}

/// Re-seals every kept material file not under the current key: (files, re-sealed).
async fn reseal_materials(state: &AppState, batch: i64) -> anyhow::Result<(u64, u64)> {
    let (mut files, mut resealed) = (0, 0);
    let mut after = String::new();
    loop {
        let keys = state
            .store
            .material_keys_after(&after, batch.max(1))
            .await?;
        for (cur, key) in &keys {
            files += 1;
            if state
                .files
                .reseal(key)
                .await
                .with_context(|| format!("material {cur}"))?
            {
                resealed += 1;
            }
        }
        match keys.last() {
            Some((cur, _)) if keys.len() as i64 >= batch.max(1) => after.clone_from(cur),
            _ => return Ok((files, resealed)),
        }
    }
}

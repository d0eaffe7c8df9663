//! Keys and materials at rest: the key-encryption key every stored key is wrapped by
//! (`crate::kek`), the personal-data keys by id, re-sealing personal data under a new
//! data key (`onewindow keys rotate-data`), and the table of sealed material blobs.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::db::{Exec, Q, Row};
use super::{SqlStore, StoreError, StoreResult, row_aad};
use crate::kek::{Kek, UnwrapError};

/// The key-encryption key a store wraps its keys with, once the application set it.
#[derive(Default, Clone)]
pub struct KekCell(Arc<OnceLock<Arc<Kek>>>);

impl std::fmt::Debug for KekCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KekCell(set: {})", self.0.get().is_some())
    }
}

impl KekCell {
    /// Sets the KEK; a second call is ignored.
    pub fn set(&self, kek: Arc<Kek>) {
        let _ = self.0.set(kek);
    }

    fn kek(&self) -> StoreResult<&Kek> {
        self.0
            .get()
            .map(Arc::as_ref)
            .ok_or_else(|| StoreError::Corrupt(crate::kek::NO_KEK.to_owned()))
    }

    /// The stored (wrapped) form of the key `plain` kept under `name`.
    pub(crate) fn wrap(&self, name: &str, plain: &[u8]) -> StoreResult<String> {
        Ok(self.kek()?.wrap(name, plain))
    }

    /// Opens a stored key. The second value is what should be stored instead, when the
    /// key is kept in plain text (from before wrapping) or under the previous KEK.
    pub(crate) fn open(&self, name: &str, stored: &str) -> StoreResult<(Vec<u8>, Option<String>)> {
        let kek = self.kek()?;
        match kek.unwrap(name, stored) {
            Ok(u) if u.by_previous => {
                let again = kek.wrap(name, &u.plain);
                Ok((u.plain, Some(again)))
            }
            Ok(u) => Ok((u.plain, None)),
            Err(UnwrapError::NotWrapped) => Ok((
                stored.as_bytes().to_vec(),
                Some(kek.wrap(name, stored.as_bytes())),
            )),
            Err(e) => Err(StoreError::Corrupt(e.to_string())),
        }
    }
}

/// A personal-data key as stored: its id, its key (unwrapped; `None` once retired) and
/// its state (`next`, `current`, `retiring`, `retired`).
#[derive(Clone, PartialEq, Eq)]
pub struct DataKeyRow {
    /// The key's id (`""`: the legacy key kept in `secrets` or the settings).
    pub kid: String,
    /// The key itself; `None` for the legacy key's row and for a retired key.
    pub key: Option<[u8; 32]>,
    /// Where the key is in its life.
    pub state: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
}

impl std::fmt::Debug for DataKeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKeyRow")
            .field("kid", &self.kid)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// How many values one re-sealing pass looked at and re-sealed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ResealCounts {
    /// Sealed (or plain) values looked at.
    pub seen: u64,
    /// Values re-sealed under the current key.
    pub resealed: u64,
}

/// The store name of a data key.
fn data_key_name(kid: &str) -> String {
    format!("data_key:{kid}")
}

/// Keys and sealed materials.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Replaces a secret's stored value if it still is `old`; true when replaced.
    async fn replace_secret(&self, name: &str, old: &str, new: &str) -> StoreResult<bool>;
    /// Removes a secret (a retired legacy data key).
    async fn delete_secret(&self, name: &str) -> StoreResult<()>;
    /// The personal-data keys, oldest first, unwrapped.
    async fn data_keys(&self) -> StoreResult<Vec<DataKeyRow>>;
    /// Adds a personal-data key (wrapped) in the given state.
    async fn add_data_key(
        &self,
        kid: &str,
        key: &[u8; 32],
        state: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Sets a key's state (a row for the legacy key `""` is made when needed); a retired
    /// key's material is erased.
    async fn set_data_key_state(
        &self,
        kid: &str,
        state: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Wraps every stored key again under the current KEK (those in plain text, or under
    /// the previous KEK); returns how many were written.
    async fn rewrap_keys(&self) -> StoreResult<u64>;
    /// One pass over the sealed columns: every value not sealed under the current data
    /// key is opened and sealed again, `batch` rows per statement; counts by column.
    async fn reseal_columns(&self, batch: i64) -> StoreResult<Vec<(String, ResealCounts)>>;
    /// Storage keys of the materials whose files are kept, after the cursor `after` (the
    /// upload id as text), at most `limit`: `(cursor, storage key)`.
    async fn material_keys_after(
        &self,
        after: &str,
        limit: i64,
    ) -> StoreResult<Vec<(String, String)>>;
    /// Stores a material's (sealed) bytes.
    async fn put_blob(&self, key: &str, bytes: Vec<u8>, now: DateTime<Utc>) -> StoreResult<()>;
    /// A material's stored bytes.
    async fn get_blob(&self, key: &str) -> StoreResult<Option<Vec<u8>>>;
    /// Deletes a material's bytes (missing is fine).
    async fn delete_blob(&self, key: &str) -> StoreResult<()>;
}

/// A sealed column: its table, column, row cursor (a unique text expression ordering
/// the rows) and how its associated data is made from the row.
struct Sealed {
    table: &'static str,
    column: &'static str,
    /// `SELECT … FROM <table>` part: the cursor as `cur`, the value as text as `val`,
    /// and whatever the associated data needs.
    select: &'static str,
    /// The cursor expression, for `WHERE … > $1 ORDER BY …`.
    cursor: &'static str,
    /// The `UPDATE <table> SET <column> = ` part (the condition is added).
    update: &'static str,
    /// The condition on the cursor and the old value (`… = $2 AND CAST(col AS TEXT) = $3`).
    condition: &'static str,
    json: bool,
    aad: fn(&Row) -> StoreResult<String>,
}

fn aad_by_cursor(
    table: &'static str,
    column: &'static str,
) -> impl Fn(&Row) -> StoreResult<String> {
    move |r: &Row| Ok(row_aad(table, column, &r.get::<String>("cur")?))
}

macro_rules! by_cursor {
    ($table:literal, $column:literal) => {
        |r: &Row| aad_by_cursor($table, $column)(r)
    };
}

fn account_aad(column: &'static str) -> impl Fn(&Row) -> StoreResult<String> {
    move |r: &Row| {
        Ok(row_aad(
            "accounts",
            column,
            &format!(
                "{}\0{}",
                r.get::<String>("issuer")?,
                r.get::<String>("subject")?
            ),
        ))
    }
}

macro_rules! account {
    ($column:literal) => {
        Sealed {
            table: "accounts",
            column: $column,
            select: concat!(
                "SELECT CAST(id AS TEXT) AS cur, CAST(",
                $column,
                " AS TEXT) AS val, issuer, subject FROM accounts WHERE ",
                $column,
                " IS NOT NULL AND CAST(id AS TEXT) > "
            ),
            cursor: "CAST(id AS TEXT)",
            update: concat!("UPDATE accounts SET ", $column, " = "),
            condition: concat!(
                " WHERE CAST(id AS TEXT) = $2 AND CAST(",
                $column,
                " AS TEXT) = $3"
            ),
            json: false,
            aad: |r: &Row| account_aad($column)(r),
        }
    };
}

macro_rules! case_col {
    ($column:literal, $json:literal) => {
        Sealed {
            table: "cases",
            column: $column,
            select: concat!(
                "SELECT CAST(id AS TEXT) AS cur, CAST(",
                $column,
                " AS TEXT) AS val FROM cases WHERE ",
                $column,
                " IS NOT NULL AND CAST(id AS TEXT) > "
            ),
            cursor: "CAST(id AS TEXT)",
            update: concat!("UPDATE cases SET ", $column, " = "),
            condition: concat!(
                " WHERE CAST(id AS TEXT) = $2 AND CAST(",
                $column,
                " AS TEXT) = $3"
            ),
            json: $json,
            aad: by_cursor!("cases", $column),
        }
    };
}

/// Every sealed column of the store (the base library's records included).
fn sealed_columns() -> Vec<Sealed> {
    vec![
        case_col!("applicant_id_number", false),
        case_col!("applicant_phone", false),
        case_col!("form", true),
        Sealed {
            table: "case_materials",
            column: "evidence",
            select: "SELECT CAST(case_id AS TEXT) || '/' || material_id AS cur, \
                     CAST(evidence AS TEXT) AS val FROM case_materials \
                     WHERE evidence IS NOT NULL AND CAST(case_id AS TEXT) || '/' || material_id > ",
            cursor: "CAST(case_id AS TEXT) || '/' || material_id",
            update: "UPDATE case_materials SET evidence = ",
            condition: " WHERE CAST(case_id AS TEXT) || '/' || material_id = $2 \
                        AND CAST(evidence AS TEXT) = $3",
            json: true,
            aad: by_cursor!("case_materials", "evidence"),
        },
        account!("id_number"),
        account!("phone"),
        account!("email"),
        Sealed {
            table: "drafts",
            column: "form",
            select: "SELECT CAST(id AS TEXT) AS cur, CAST(form AS TEXT) AS val FROM drafts \
                     WHERE CAST(id AS TEXT) > ",
            cursor: "CAST(id AS TEXT)",
            update: "UPDATE drafts SET form = ",
            condition: " WHERE CAST(id AS TEXT) = $2 AND CAST(form AS TEXT) = $3",
            json: true,
            aad: by_cursor!("drafts", "form"),
        },
        Sealed {
            table: "sessions",
            column: "value",
            select: "SELECT key AS cur, value AS val FROM sessions WHERE key > ",
            cursor: "key",
            update: "UPDATE sessions SET value = ",
            condition: " WHERE key = $2 AND value = $3",
            json: false,
            aad: by_cursor!("sessions", "value"),
        },
        Sealed {
            table: "base_records",
            column: "data",
            select: "SELECT resource || '/' || subject || '/' || record AS cur, \
                     CAST(data AS TEXT) AS val, resource, subject, record FROM base_records \
                     WHERE resource || '/' || subject || '/' || record > ",
            cursor: "resource || '/' || subject || '/' || record",
            update: "UPDATE base_records SET data = ",
            condition: " WHERE resource || '/' || subject || '/' || record = $2 \
                        AND CAST(data AS TEXT) = $3",
            json: true,
            aad: |r: &Row| {
                Ok(crate::sharing::seal::record_aad(
                    &r.get::<String>("resource")?,
                    &r.get::<String>("record")?,
                    &r.get::<String>("subject")?,
                ))
            },
        },
    ]
}

impl SqlStore {
    /// One column, all its rows, `batch` at a time.
    async fn reseal_column(
        &self,
        sealer: &crate::sharing::seal::Sealer,
        spec: &Sealed,
        batch: i64,
    ) -> StoreResult<ResealCounts> {
        let current = sealer.current_kid();
        let mut counts = ResealCounts::default();
        let mut after = String::new();
        loop {
            let q = Q::new(spec.select)
                .push_bind(after.clone())
                .push(" ORDER BY ")
                .push(spec.cursor)
                .push(" LIMIT ")
                .push_bind(batch);
            let rows = self.db.fetch_all(q).await?;
            let n = rows.len();
            for r in &rows {
                let cur: String = r.get("cur")?;
                let text: Option<String> = r.get("val")?;
                after.clone_from(&cur);
                let Some(text) = text else { continue };
                let parsed: Option<serde_json::Value> = serde_json::from_str(&text).ok();
                let kid = parsed
                    .as_ref()
                    .and_then(crate::sharing::seal::Sealer::kid_of)
                    .map(str::to_owned);
                if kid.as_deref() == Some(current.as_str()) {
                    counts.seen += 1;
                    continue;
                }
                let aad = (spec.aad)(r)?;
                // The plain value: opened, or (never sealed) the value as it is.
                let plain = match (kid, parsed) {
                    (Some(_), Some(v)) => sealer.open(&aad, &v).map_err(|e| {
                        StoreError::Corrupt(format!("{}.{} {cur}: {e}", spec.table, spec.column))
                    })?,
                    _ if !spec.json => serde_json::Value::String(text.clone()),
                    (_, Some(v)) => v,
                    (_, None) => continue,
                };
                counts.seen += 1;
                let sealed = sealer.seal(&aad, &plain);
                let q = Q::new(spec.update);
                let q = if spec.json {
                    q.push_bind(sealed)
                } else {
                    q.push_bind(sealed.to_string())
                };
                let q = q.push(spec.condition).bind(cur).bind(text);
                // A row changed meanwhile was written under the current key already.
                counts.resealed += self.db.execute(q).await?;
            }
            if (n as i64) < batch {
                break;
            }
        }
        Ok(counts)
    }
}

#[async_trait]
impl KeyStore for SqlStore {
    async fn replace_secret(&self, name: &str, old: &str, new: &str) -> StoreResult<bool> {
        let q = Q::new("UPDATE secrets SET value = $1 WHERE name = $2 AND value = $3")
            .bind(new)
            .bind(name)
            .bind(old);
        Ok(self.db.execute(q).await? > 0)
    }

    async fn delete_secret(&self, name: &str) -> StoreResult<()> {
        self.db
            .execute(Q::new("DELETE FROM secrets WHERE name = $1").bind(name))
            .await?;
        Ok(())
    }

    async fn data_keys(&self) -> StoreResult<Vec<DataKeyRow>> {
        let q = Q::new(
            "SELECT kid, wrapped, state, created_at FROM data_keys ORDER BY created_at, kid",
        );
        let rows = self.db.fetch_all(q).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let kid: String = r.get("kid")?;
            let wrapped: String = r.get("wrapped")?;
            let key = if wrapped.is_empty() {
                None
            } else {
                let (plain, again) = self.kek.open(&data_key_name(&kid), &wrapped)?;
                if let Some(again) = again {
                    let q =
                        Q::new("UPDATE data_keys SET wrapped = $1 WHERE kid = $2 AND wrapped = $3")
                            .bind(again)
                            .bind(&kid)
                            .bind(&wrapped);
                    self.db.execute(q).await?;
                }
                Some(
                    plain.try_into().map_err(|_| {
                        StoreError::Corrupt(format!("data key {kid} is not 32 bytes"))
                    })?,
                )
            };
            out.push(DataKeyRow {
                kid,
                key,
                state: r.get("state")?,
                created_at: r.get("created_at")?,
            });
        }
        Ok(out)
    }

    async fn add_data_key(
        &self,
        kid: &str,
        key: &[u8; 32],
        state: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let q = Q::new(
            "INSERT INTO data_keys (kid, wrapped, state, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(kid)
        .bind(self.kek.wrap(&data_key_name(kid), key)?)
        .bind(state)
        .bind(now);
        self.db.execute(q).await?;
        Ok(())
    }

    async fn set_data_key_state(
        &self,
        kid: &str,
        state: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let q = Q::new(
            "INSERT INTO data_keys (kid, wrapped, state, created_at) VALUES ($1, '', $2, $3) \
             ON CONFLICT (kid) DO UPDATE SET state = excluded.state",
        )
        .bind(kid)
        .bind(state)
        .bind(now);
        self.db.execute(q).await?;
        if state == "retired" {
            let q = Q::new("UPDATE data_keys SET wrapped = '' WHERE kid = $1").bind(kid);
            self.db.execute(q).await?;
        }
        Ok(())
    }

    async fn rewrap_keys(&self) -> StoreResult<u64> {
        let mut n = 0;
        for r in self
            .db
            .fetch_all(Q::new("SELECT name, value FROM secrets"))
            .await?
        {
            let (name, value): (String, String) = (r.get("name")?, r.get("value")?);
            if let (_, Some(again)) = self.kek.open(&name, &value)? {
                n += u64::from(self.replace_secret(&name, &value, &again).await?);
            }
        }
        for r in self
            .db
            .fetch_all(Q::new("SELECT kid, secret FROM signing_keys"))
            .await?
        {
            let (kid, value): (String, String) = (r.get("kid")?, r.get("secret")?);
            if let (_, Some(again)) = self.kek.open(&format!("signing_key:{kid}"), &value)? {
                let q =
                    Q::new("UPDATE signing_keys SET secret = $1 WHERE kid = $2 AND secret = $3")
                        .bind(again)
                        .bind(&kid)
                        .bind(&value);
                n += self.db.execute(q).await?;
            }
        }
        for r in self
            .db
            .fetch_all(Q::new(
                "SELECT kid, wrapped FROM data_keys WHERE wrapped <> ''",
            ))
            .await?
        {
            let (kid, value): (String, String) = (r.get("kid")?, r.get("wrapped")?);
            if let (_, Some(again)) = self.kek.open(&data_key_name(&kid), &value)? {
                let q = Q::new("UPDATE data_keys SET wrapped = $1 WHERE kid = $2 AND wrapped = $3")
                    .bind(again)
                    .bind(&kid)
                    .bind(&value);
                n += self.db.execute(q).await?;
            }
        }
        Ok(n)
    }

    async fn reseal_columns(&self, batch: i64) -> StoreResult<Vec<(String, ResealCounts)>> {
        let sealer = self
            .seal
            .sealer()
            .ok_or_else(|| StoreError::Corrupt("re-sealing needs the personal-data keys".into()))?;
        let mut out = Vec::new();
        for spec in sealed_columns() {
            let counts = self.reseal_column(&sealer, &spec, batch.max(1)).await?;
            out.push((format!("{}.{}", spec.table, spec.column), counts));
        }
        Ok(out)
    }

    async fn material_keys_after(
        &self,
        after: &str,
        limit: i64,
    ) -> StoreResult<Vec<(String, String)>> {
        let q = Q::new(
            "SELECT CAST(id AS TEXT) AS cur, storage_key FROM uploads \
             WHERE purged_at IS NULL AND CAST(id AS TEXT) > $1 \
             ORDER BY CAST(id AS TEXT) LIMIT $2",
        )
        .bind(after)
        .bind(limit);
        self.db
            .fetch_all_with(q, |r| Ok((r.get("cur")?, r.get("storage_key")?)))
            .await
    }

    async fn put_blob(&self, key: &str, bytes: Vec<u8>, now: DateTime<Utc>) -> StoreResult<()> {
        let q = Q::new(
            "INSERT INTO material_blobs (storage_key, bytes, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (storage_key) DO UPDATE SET bytes = excluded.bytes",
        )
        .bind(key)
        .bind(bytes)
        .bind(now);
        self.db.execute(q).await?;
        Ok(())
    }

    async fn get_blob(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let q = Q::new("SELECT bytes FROM material_blobs WHERE storage_key = $1").bind(key);
        match self.db.fetch_optional(q).await? {
            Some(r) => Ok(Some(r.get("bytes")?)),
            None => Ok(None),
        }
    }

    async fn delete_blob(&self, key: &str) -> StoreResult<()> {
        let q = Q::new("DELETE FROM material_blobs WHERE storage_key = $1").bind(key);
        self.db.execute(q).await?;
        Ok(())
    }
}

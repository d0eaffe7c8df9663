//! The embedded SQLite store: one file under the data directory, WAL journal,
//! `synchronous=FULL` (a submission acknowledged is a submission kept).

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::shared::{CHAIN_START, chain_hash};
use super::{
    AccessRecord, Account, AccountRow, ApiToken, BaseRecord, CaseApplicant, CaseFilter, CaseRow,
    CaseWrite, ConsentRow, DraftRow, EventRow, IdemRecord, MaterialRow, NewAccess, NoticeRow,
    OutboxRow, ServiceVersion, ServiceVersionInfo, SharingFigures, Store, StoreError, StoreResult,
    UploadRow, UpsertCounts, WriteOutcome, split_scopes,
};
use super::{
    AttemptOutcome, AttemptRow, Delivery, DeliveryFilter, DepartmentEndpoint, NEXT_IN_ORDER,
    StoredKey,
};
use crate::auth::identity::AccountKind;
use crate::auth::identity::Identity;
use crate::domain::ids::ResidentId;

/// SQLite implementation of [`Store`].
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    seal: super::RowSeal,
}

impl SqliteStore {
    /// Opens (and creates, with its parent directory) the database file.
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<SqliteStore> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let file = options.get_filename();
        if let Some(parent) = file.parent()
            && !parent.as_os_str().is_empty()
            && file.as_os_str() != ":memory:"
        {
            std::fs::create_dir_all(parent).map_err(|e| StoreError::Database(e.into()))?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections.clamp(1, 16))
            .connect_with(options)
            .await?;
        Ok(SqliteStore {
            pool,
            seal: super::RowSeal::default(),
        })
    }
}

fn parse_uuid(s: &str) -> StoreResult<uuid::Uuid> {
    uuid::Uuid::parse_str(s).map_err(|e| StoreError::Corrupt(format!("bad id {s:?}: {e}")))
}

fn opt_time(s: Option<String>) -> StoreResult<Option<DateTime<Utc>>> {
    s.as_deref().map(parse_time).transpose()
}

fn token_from_row(r: &sqlx::sqlite::SqliteRow) -> StoreResult<ApiToken> {
    Ok(ApiToken {
        id: parse_uuid(r.try_get("id")?)?,
        department: r.try_get("department")?,
        name: r.try_get("name")?,
        scopes: split_scopes(r.try_get("scopes")?),
        created_at: parse_time(r.try_get("created_at")?)?,
        expires_at: opt_time(r.try_get("expires_at")?)?,
        revoked_at: opt_time(r.try_get("revoked_at")?)?,
    })
}

const TOKEN_COLUMNS: &str = "id, department, name, scopes, created_at, expires_at, revoked_at";

fn parse_time(s: &str) -> StoreResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("bad timestamp {s:?}: {e}")))
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn migrate(&self) -> StoreResult<usize> {
        let migrator = sqlx::migrate!("migrations/sqlite");
        let before = applied_count(&self.pool).await;
        migrator.run(&self.pool).await?;
        Ok(applied_count(&self.pool).await.saturating_sub(before))
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn record_service_versions(&self, versions: &[ServiceVersion]) -> StoreResult<u64> {
        let mut tx = self.pool.begin().await?;
        let mut added = 0;
        for v in versions {
            let r = sqlx::query(
                "INSERT INTO service_versions (code, version, definition, published_at) \
                 VALUES (?, ?, ?, ?) ON CONFLICT (code, version) DO NOTHING",
            )
            .bind(&v.code)
            .bind(&v.version)
            .bind(v.definition.to_string())
            .bind(
                v.published_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            )
            .execute(&mut *tx)
            .await?;
            added += r.rows_affected();
        }
        tx.commit().await?;
        Ok(added)
    }

    async fn service_versions(&self, code: &str) -> StoreResult<Vec<ServiceVersionInfo>> {
        let rows = sqlx::query(
            "SELECT version, published_at FROM service_versions WHERE code = ? \
             ORDER BY published_at DESC, version",
        )
        .bind(code)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ServiceVersionInfo {
                    version: r.try_get("version")?,
                    published_at: parse_time(r.try_get("published_at")?)?,
                })
            })
            .collect()
    }

    async fn service_version(
        &self,
        code: &str,
        version: &str,
    ) -> StoreResult<Option<ServiceVersion>> {
        let row = sqlx::query(
            "SELECT code, version, definition, published_at FROM service_versions \
             WHERE code = ? AND version = ?",
        )
        .bind(code)
        .bind(version)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            let def: String = r.try_get("definition")?;
            Ok(ServiceVersion {
                code: r.try_get("code")?,
                version: r.try_get("version")?,
                definition: serde_json::from_str(&def)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                published_at: parse_time(r.try_get("published_at")?)?,
            })
        })
        .transpose()
    }

    async fn upsert_account(&self, who: &Identity, now: DateTime<Utc>) -> StoreResult<uuid::Uuid> {
        let roles =
            serde_json::to_string(&who.roles).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let id: String = sqlx::query_scalar(
            "INSERT INTO accounts (id, issuer, subject, kind, name, id_number, phone, assurance, \
             enterprise_uscc, enterprise_name, enterprise_role, roles, created_at, last_login_at, email) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (issuer, subject) DO UPDATE SET kind = excluded.kind, name = excluded.name, \
             id_number = excluded.id_number, phone = excluded.phone, email = excluded.email, assurance = excluded.assurance, \
             enterprise_uscc = excluded.enterprise_uscc, enterprise_name = excluded.enterprise_name, \
             enterprise_role = excluded.enterprise_role, roles = excluded.roles, \
             last_login_at = excluded.last_login_at \
             RETURNING id",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(&who.issuer)
        .bind(&who.subject)
        .bind(who.kind.code())
        .bind(&who.name)
        .bind(self.seal.text(
            &super::row_aad("accounts", "id_number", &identity_key(who)),
            who.id_number.as_ref().map(|i| i.expose()),
        ))
        .bind(self.seal.text(
            &super::row_aad("accounts", "phone", &identity_key(who)),
            who.phone.as_deref(),
        ))
        .bind(i64::from(who.assurance))
        .bind(who.enterprise.as_ref().map(|e| e.uscc.clone()))
        .bind(who.enterprise.as_ref().map(|e| e.name.clone()))
        .bind(who.enterprise.as_ref().map(|e| e.role.clone()))
        .bind(roles)
        .bind(now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .bind(now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .bind(self.seal.text(
            &super::row_aad("accounts", "email", &identity_key(who)),
            who.email.as_deref(),
        ))
        .fetch_one(&self.pool)
        .await?;
        parse_uuid(&id)
    }

    async fn account(&self, id: uuid::Uuid) -> StoreResult<Option<Account>> {
        let row = sqlx::query("SELECT * FROM accounts WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            let roles: String = r.try_get("roles")?;
            AccountRow {
                id: parse_uuid(r.try_get("id")?)?,
                issuer: r.try_get("issuer")?,
                subject: r.try_get("subject")?,
                kind: r.try_get("kind")?,
                name: r.try_get("name")?,
                id_number: self
                    .seal
                    .open_text(&account_aad(&r, "id_number")?, r.try_get("id_number")?)?,
                phone: self
                    .seal
                    .open_text(&account_aad(&r, "phone")?, r.try_get("phone")?)?,
                email: self
                    .seal
                    .open_text(&account_aad(&r, "email")?, r.try_get("email")?)?,
                assurance: r.try_get("assurance")?,
                enterprise_uscc: r.try_get("enterprise_uscc")?,
                enterprise_name: r.try_get("enterprise_name")?,
                enterprise_role: r.try_get("enterprise_role")?,
                roles: serde_json::from_str(&roles)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                created_at: parse_time(r.try_get("created_at")?)?,
                last_login_at: parse_time(r.try_get("last_login_at")?)?,
            }
            .into_account()
        })
        .transpose()
    }

    async fn insert_api_token(&self, t: &ApiToken, token_hash: &str) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO api_tokens (id, department, name, scopes, token_hash, created_at, expires_at, revoked_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
        )
        .bind(t.id.to_string())
        .bind(&t.department)
        .bind(&t.name)
        .bind(t.scopes.join(" "))
        .bind(token_hash)
        .bind(t.created_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .bind(t.expires_at.map(|e| e.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn api_token_by_hash(&self, token_hash: &str) -> StoreResult<Option<ApiToken>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE token_hash = ?"
        )))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    async fn api_tokens(&self) -> StoreResult<Vec<ApiToken>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY created_at DESC, id DESC"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(token_from_row).collect()
    }

    async fn revoke_api_token(&self, id: uuid::Uuid, now: DateTime<Utc>) -> StoreResult<bool> {
        let r =
            sqlx::query("UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
                .bind(now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
                .bind(id.to_string())
                .execute(&self.pool)
                .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn create_case(&self, c: &CaseRow, w: CaseWrite<'_>) -> StoreResult<WriteOutcome> {
        let mut tx = self.pool.begin().await?;
        if let Some(idem) = w.idem
            && let Some(prior) = claim_idem(&mut tx, idem).await?
        {
            tx.rollback().await?;
            return Ok(WriteOutcome::Replay(prior));
        }
        let r = sqlx::query(
            "INSERT INTO cases (id, case_no, query_code, service_code, service_version, department, \
             applicant_account, applicant_kind, applicant_name, applicant_id_number, applicant_uscc, applicant_phone, \
             channel, intake_account, intake_hall, status, form, accepted_on, due_on, legal_due_on, pauses, \
             concluded_on, result, version, created_at, updated_at, provenance, fields_filled, fields_prefilled) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?)",
        )
        .bind(c.id.to_string())
        .bind(&c.case_no)
        .bind(&c.query_code)
        .bind(&c.service_code)
        .bind(&c.service_version)
        .bind(&c.department)
        .bind(c.applicant.account_id.map(|a| a.to_string()))
        .bind(c.applicant.kind.code())
        .bind(&c.applicant.name)
        .bind(self.seal.text(
            &super::row_aad("cases", "applicant_id_number", &c.id.to_string()),
            c.applicant.id_number.as_ref().map(|i| i.expose()),
        ))
        .bind(&c.applicant.uscc)
        .bind(self.seal.text(
            &super::row_aad("cases", "applicant_phone", &c.id.to_string()),
            c.applicant.phone.as_deref(),
        ))
        .bind(&c.channel)
        .bind(c.intake_account.map(|a| a.to_string()))
        .bind(&c.intake_hall)
        .bind(&c.status)
        .bind(
            self.seal
                .json(&super::row_aad("cases", "form", &c.id.to_string()), &c.form)
                .to_string(),
        )
        .bind(c.accepted_on.map(|d| d.to_string()))
        .bind(c.due_on.map(|d| d.to_string()))
        .bind(c.legal_due_on.map(|d| d.to_string()))
        .bind(c.pauses.to_string())
        .bind(c.concluded_on.map(|d| d.to_string()))
        .bind(&c.result)
        .bind(c.created_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .bind(c.updated_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .bind(c.provenance.to_string())
        .bind(i64::from(c.fields_filled))
        .bind(i64::from(c.fields_prefilled))
        .execute(&mut *tx)
        .await;
        match r {
            Ok(_) => {}
            Err(e) if super::is_unique_violation(&e) => {
                tx.rollback().await?;
                return Ok(WriteOutcome::Conflict);
            }
            Err(e) => return Err(e.into()),
        }
        write_side_effects(&mut tx, c, 1, w, &self.seal).await?;
        tx.commit().await?;
        Ok(WriteOutcome::Done)
    }

    async fn update_case(&self, c: &CaseRow, w: CaseWrite<'_>) -> StoreResult<WriteOutcome> {
        let mut tx = self.pool.begin().await?;
        if let Some(idem) = w.idem
            && let Some(prior) = claim_idem(&mut tx, idem).await?
        {
            tx.rollback().await?;
            return Ok(WriteOutcome::Replay(prior));
        }
        let r = sqlx::query(
            "UPDATE cases SET status = ?, form = ?, accepted_on = ?, due_on = ?, legal_due_on = ?, pauses = ?, \
             parts = ?, concluded_on = ?, result = ?, updated_at = ?, version = version + 1 \
             WHERE id = ? AND version = ?",
        )
        .bind(&c.status)
        .bind(
            self.seal
                .json(&super::row_aad("cases", "form", &c.id.to_string()), &c.form)
                .to_string(),
        )
        .bind(c.accepted_on.map(|d| d.to_string()))
        .bind(c.due_on.map(|d| d.to_string()))
        .bind(c.legal_due_on.map(|d| d.to_string()))
        .bind(c.pauses.to_string())
        .bind(c.parts.to_string())
        .bind(c.concluded_on.map(|d| d.to_string()))
        .bind(&c.result)
        .bind(c.updated_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .bind(c.id.to_string())
        .bind(c.version)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(WriteOutcome::Conflict);
        }
        let seq: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM case_events WHERE case_id = ?",
        )
        .bind(c.id.to_string())
        .fetch_one(&mut *tx)
        .await?;
        write_side_effects(&mut tx, c, seq as i32, w, &self.seal).await?;
        tx.commit().await?;
        Ok(WriteOutcome::Done)
    }

    async fn case_by_id(&self, id: uuid::Uuid) -> StoreResult<Option<CaseRow>> {
        let row = sqlx::query("SELECT * FROM cases WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref()
            .map(|r| case_from_row(r, &self.seal))
            .transpose()
    }

    async fn case_by_no(&self, case_no: &str) -> StoreResult<Option<CaseRow>> {
        let row = sqlx::query("SELECT * FROM cases WHERE case_no = ?")
            .bind(case_no)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref()
            .map(|r| case_from_row(r, &self.seal))
            .transpose()
    }

    async fn case_events(&self, case_id: uuid::Uuid) -> StoreResult<Vec<EventRow>> {
        let rows = sqlx::query("SELECT * FROM case_events WHERE case_id = ? ORDER BY seq")
            .bind(case_id.to_string())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let att: String = r.try_get("attachments")?;
                Ok(EventRow {
                    seq: r.try_get::<i64, _>("seq")? as i32,
                    at: parse_time(r.try_get("at")?)?,
                    actor: r.try_get("actor")?,
                    actor_id: r.try_get("actor_id")?,
                    actor_name: r.try_get("actor_name")?,
                    action: r.try_get("action")?,
                    from_status: r.try_get("from_status")?,
                    to_status: r.try_get("to_status")?,
                    note: r.try_get("note")?,
                    attachments: json(&att)?,
                })
            })
            .collect()
    }

    async fn case_materials(&self, case_id: uuid::Uuid) -> StoreResult<Vec<MaterialRow>> {
        let rows = sqlx::query(
            "SELECT m.material_id, m.upload_id, m.substituted, m.source, m.evidence, m.added_seq, \
             u.file_name, u.file_type, u.size, u.sha256 \
             FROM case_materials m LEFT JOIN uploads u ON u.id = m.upload_id \
             WHERE m.case_id = ? ORDER BY m.added_seq, m.rowid",
        )
        .bind(case_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let evidence: Option<String> = r.try_get("evidence")?;
                let material_id: String = r.try_get("material_id")?;
                let evidence = evidence
                    .as_deref()
                    .map(json)
                    .transpose()?
                    .map(|v| {
                        self.seal.open_json(
                            &super::row_aad(
                                "case_materials",
                                "evidence",
                                &format!("{case_id}/{material_id}"),
                            ),
                            v,
                        )
                    })
                    .transpose()?;
                Ok(MaterialRow {
                    evidence,
                    material_id: r.try_get("material_id")?,
                    upload_id: r
                        .try_get::<Option<String>, _>("upload_id")?
                        .as_deref()
                        .map(parse_uuid)
                        .transpose()?,
                    substituted: r.try_get::<i64, _>("substituted")? != 0,
                    source: r.try_get("source")?,
                    added_seq: r.try_get::<i64, _>("added_seq")? as i32,
                    file_name: r.try_get("file_name")?,
                    file_type: r.try_get("file_type")?,
                    size: r.try_get("size")?,
                    sha256: r.try_get("sha256")?,
                })
            })
            .collect()
    }

    async fn list_cases(&self, f: &CaseFilter) -> StoreResult<(Vec<CaseRow>, i64)> {
        let build = |select: &str| {
            let mut qb = sqlx::QueryBuilder::<sqlx::Sqlite>::new(select);
            qb.push(" WHERE 1 = 1");
            if let Some(a) = f.applicant {
                qb.push(" AND applicant_account = ")
                    .push_bind(a.to_string());
            }
            if let Some(ds) = &f.departments {
                qb.push(" AND department IN (");
                let mut sep = qb.separated(", ");
                sep.push_bind("");
                for d in ds {
                    sep.push_bind(d.clone());
                }
                qb.push(")");
            }
            if !f.statuses.is_empty() {
                qb.push(" AND status IN (");
                let mut sep = qb.separated(", ");
                for s in &f.statuses {
                    sep.push_bind(s.clone());
                }
                qb.push(")");
            }
            if let Some(s) = &f.service {
                qb.push(" AND service_code = ").push_bind(s.clone());
            }
            if let Some(d) = f.due_by {
                qb.push(" AND due_on <= ").push_bind(d.to_string());
            }
            if let Some(t) = f.updated_since {
                qb.push(" AND updated_at >= ")
                    .push_bind(t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
            }
            qb
        };
        let total: i64 = build("SELECT COUNT(*) FROM cases")
            .build_query_scalar()
            .fetch_one(&self.pool)
            .await?;
        let mut qb = build("SELECT * FROM cases");
        qb.push(" ORDER BY created_at DESC, id DESC LIMIT ")
            .push_bind(f.limit)
            .push(" OFFSET ")
            .push_bind(f.offset);
        let rows = qb.build().fetch_all(&self.pool).await?;
        let cases = rows
            .iter()
            .map(|r| case_from_row(r, &self.seal))
            .collect::<StoreResult<Vec<_>>>()?;
        Ok((cases, total))
    }

    async fn case_outbox(&self, case_id: uuid::Uuid) -> StoreResult<Vec<OutboxRow>> {
        let rows = sqlx::query("SELECT id, case_seq, department, event_type, payload FROM outbox WHERE case_id = ? ORDER BY case_seq, id")
            .bind(case_id.to_string())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let payload: String = r.try_get("payload")?;
                Ok(OutboxRow {
                    id: parse_uuid(r.try_get("id")?)?,
                    case_seq: r.try_get::<i64, _>("case_seq")? as i32,
                    department: r.try_get("department")?,
                    event_type: r.try_get("event_type")?,
                    payload: json(&payload)?,
                })
            })
            .collect()
    }

    async fn idempotent(&self, scope: &str, key: &str) -> StoreResult<Option<IdemRecord>> {
        let row = sqlx::query("SELECT * FROM idempotency WHERE scope = ? AND key = ?")
            .bind(scope)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(idem_from_row).transpose()
    }

    async fn rate_case(
        &self,
        case_id: uuid::Uuid,
        rating: i16,
        comment: Option<&str>,
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let r = sqlx::query(
            "UPDATE cases SET rating = ?, rating_comment = ?, rated_at = ? WHERE id = ? AND rating IS NULL",
        )
        .bind(i64::from(rating))
        .bind(comment)
        .bind(at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .bind(case_id.to_string())
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn insert_upload(&self, u: &UploadRow) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO uploads (id, owner, file_name, file_type, size, sha256, storage_key, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(u.id.to_string())
        .bind(u.owner.to_string())
        .bind(&u.file_name)
        .bind(&u.file_type)
        .bind(u.size)
        .bind(&u.sha256)
        .bind(&u.storage_key)
        .bind(u.created_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn upload(&self, id: uuid::Uuid) -> StoreResult<Option<UploadRow>> {
        let row = sqlx::query("SELECT * FROM uploads WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(upload_from_row).transpose()
    }

    async fn remove_stale_uploads(&self, before: DateTime<Utc>) -> StoreResult<Vec<UploadRow>> {
        let rows =
            sqlx::query("DELETE FROM uploads WHERE case_id IS NULL AND created_at < ? RETURNING *")
                .bind(before.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(upload_from_row).collect()
    }

    async fn save_draft(&self, d: &DraftRow) -> StoreResult<bool> {
        let r = sqlx::query(
            "INSERT INTO drafts (id, account_id, service_code, form, created_at, updated_at, expires_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET form = excluded.form, updated_at = excluded.updated_at, \
             expires_at = excluded.expires_at WHERE drafts.account_id = excluded.account_id \
             AND drafts.service_code = excluded.service_code",
        )
        .bind(d.id.to_string())
        .bind(d.account_id.to_string())
        .bind(&d.service_code)
        .bind(
            self.seal
                .json(&super::row_aad("drafts", "form", &d.id.to_string()), &d.form)
                .to_string(),
        )
        .bind(d.created_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .bind(d.updated_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .bind(d.expires_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn draft(&self, id: uuid::Uuid, owner: uuid::Uuid) -> StoreResult<Option<DraftRow>> {
        let row = sqlx::query("SELECT * FROM drafts WHERE id = ? AND account_id = ?")
            .bind(id.to_string())
            .bind(owner.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref()
            .map(|r| draft_from_row(r, &self.seal))
            .transpose()
    }

    async fn drafts(&self, owner: uuid::Uuid) -> StoreResult<Vec<DraftRow>> {
        let rows =
            sqlx::query("SELECT * FROM drafts WHERE account_id = ? ORDER BY updated_at DESC")
                .bind(owner.to_string())
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(|r| draft_from_row(r, &self.seal)).collect()
    }

    async fn delete_draft(&self, id: uuid::Uuid, owner: uuid::Uuid) -> StoreResult<bool> {
        let r = sqlx::query("DELETE FROM drafts WHERE id = ? AND account_id = ?")
            .bind(id.to_string())
            .bind(owner.to_string())
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn purge_expired_drafts(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        let r = sqlx::query("DELETE FROM drafts WHERE expires_at < ?")
            .bind(now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    async fn notifications(&self, account: uuid::Uuid, limit: i64) -> StoreResult<Vec<NoticeRow>> {
        let rows = sqlx::query("SELECT * FROM notifications WHERE account_id = ? ORDER BY created_at DESC, id DESC LIMIT ?")
            .bind(account.to_string())
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(NoticeRow {
                    id: parse_uuid(r.try_get("id")?)?,
                    account_id: parse_uuid(r.try_get("account_id")?)?,
                    case_id: parse_uuid(r.try_get("case_id")?)?,
                    case_no: r.try_get("case_no")?,
                    title_zh: r.try_get("title_zh")?,
                    title_en: r.try_get("title_en")?,
                    body_zh: r.try_get("body_zh")?,
                    body_en: r.try_get("body_en")?,
                    created_at: parse_time(r.try_get("created_at")?)?,
                    read_at: opt_time(r.try_get("read_at")?)?,
                })
            })
            .collect()
    }

    async fn set_endpoint(&self, e: &DepartmentEndpoint) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO department_endpoints (department, mode, endpoint, data_api, updated_at) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (department) DO UPDATE SET mode = excluded.mode, endpoint = excluded.endpoint, \
             data_api = COALESCE(excluded.data_api, department_endpoints.data_api), updated_at = excluded.updated_at",
        )
        .bind(&e.department)
        .bind(&e.mode)
        .bind(&e.endpoint)
        .bind(&e.data_api)
        .bind(ts(e.updated_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn endpoints(&self) -> StoreResult<Vec<DepartmentEndpoint>> {
        let rows = sqlx::query("SELECT * FROM department_endpoints ORDER BY department")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(DepartmentEndpoint {
                    data_api: r.try_get("data_api")?,
                    department: r.try_get("department")?,
                    mode: r.try_get("mode")?,
                    endpoint: r.try_get("endpoint")?,
                    updated_at: parse_time(r.try_get("updated_at")?)?,
                })
            })
            .collect()
    }

    async fn claim_push(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<Delivery>> {
        let ids: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "UPDATE outbox SET lease_until = ? WHERE id IN ( \
               SELECT o.id FROM outbox o JOIN department_endpoints d ON d.department = o.department AND d.mode = 'push' \
               WHERE o.state = 'pending' AND (o.next_attempt_at IS NULL OR o.next_attempt_at <= ?) \
                 AND (o.lease_until IS NULL OR o.lease_until < ?) \
                 AND {NEXT_IN_ORDER} \
               ORDER BY o.created_at, o.id LIMIT ?) \
             RETURNING id"
        )))
        .bind(ts(lease_until))
        .bind(ts(now))
        .bind(ts(now))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        self.deliveries_by_ids(&ids).await
    }

    async fn finish_attempt(
        &self,
        event_id: uuid::Uuid,
        a: &AttemptRow,
        outcome: AttemptOutcome,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO delivery_attempts (event_id, attempt, at, status, latency_ms, error) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(event_id.to_string())
            .bind(i64::from(a.attempt))
            .bind(ts(a.at))
            .bind(a.status.map(i64::from))
            .bind(a.latency_ms)
            .bind(&a.error)
            .execute(&mut *tx)
            .await?;
        let (state, next, delivered) = match outcome {
            AttemptOutcome::Delivered => ("delivered", None, Some(ts(a.at))),
            AttemptOutcome::RetryAt(t) => ("pending", Some(ts(t)), None),
            AttemptOutcome::Dead => ("dead", None, None),
        };
        sqlx::query(
            "UPDATE outbox SET state = ?, attempts = ?, next_attempt_at = ?, delivered_at = ?, lease_until = NULL, \
             last_status = ?, last_error = ? WHERE id = ?",
        )
        .bind(state)
        .bind(i64::from(a.attempt))
        .bind(next)
        .bind(delivered)
        .bind(a.status.map(i64::from))
        .bind(&a.error)
        .bind(event_id.to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn lease_inbox(
        &self,
        department: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<Delivery>> {
        let ids: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "UPDATE outbox SET lease_until = ? WHERE id IN ( \
               SELECT o.id FROM outbox o \
               WHERE o.department = ? AND o.state = 'pending' \
                 AND NOT EXISTS (SELECT 1 FROM department_endpoints d WHERE d.department = o.department AND d.mode = 'push') \
                 AND (o.lease_until IS NULL OR o.lease_until < ?) \
                 AND {NEXT_IN_ORDER} \
               ORDER BY o.created_at, o.id LIMIT ?) \
             RETURNING id"
        )))
        .bind(ts(lease_until))
        .bind(department)
        .bind(ts(now))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        self.deliveries_by_ids(&ids).await
    }

    async fn ack(
        &self,
        department: &str,
        event_id: uuid::Uuid,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let r = sqlx::query(
            "UPDATE outbox SET state = 'delivered', delivered_at = ?, lease_until = NULL \
             WHERE id = ? AND department = ? AND state = 'pending'",
        )
        .bind(ts(now))
        .bind(event_id.to_string())
        .bind(department)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn deliveries(&self, f: &DeliveryFilter) -> StoreResult<Vec<Delivery>> {
        let mut qb = sqlx::QueryBuilder::<sqlx::Sqlite>::new(DELIVERY_SELECT);
        qb.push(" WHERE 1 = 1");
        if let Some(s) = &f.state {
            qb.push(" AND o.state = ").push_bind(s.clone());
        }
        if let Some(d) = &f.department {
            qb.push(" AND o.department = ").push_bind(d.clone());
        }
        if let Some(c) = f.case_id {
            qb.push(" AND o.case_id = ").push_bind(c.to_string());
        }
        qb.push(" ORDER BY o.created_at, o.id LIMIT ")
            .push_bind(f.limit);
        let rows = qb.build().fetch_all(&self.pool).await?;
        rows.iter().map(delivery_from_row).collect()
    }

    async fn redeliver(&self, event_id: uuid::Uuid) -> StoreResult<bool> {
        let r = sqlx::query(
            "UPDATE outbox SET state = 'pending', retry_from = attempts, next_attempt_at = NULL, lease_until = NULL \
             WHERE id = ? AND state = 'dead'",
        )
        .bind(event_id.to_string())
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn attempts(&self, event_id: uuid::Uuid) -> StoreResult<Vec<AttemptRow>> {
        let rows =
            sqlx::query("SELECT * FROM delivery_attempts WHERE event_id = ? ORDER BY attempt")
                .bind(event_id.to_string())
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                Ok(AttemptRow {
                    attempt: r.try_get::<i64, _>("attempt")? as i32,
                    at: parse_time(r.try_get("at")?)?,
                    status: r.try_get::<Option<i64>, _>("status")?.map(|s| s as i32),
                    latency_ms: r.try_get("latency_ms")?,
                    error: r.try_get("error")?,
                })
            })
            .collect()
    }

    async fn ensure_signing_key(&self, first: &StoredKey) -> StoreResult<Vec<StoredKey>> {
        sqlx::query(
            "INSERT INTO signing_keys (kid, secret, created_at, retires_at) \
             SELECT ?, ?, ?, NULL WHERE NOT EXISTS (SELECT 1 FROM signing_keys)",
        )
        .bind(&first.kid)
        .bind(&first.secret)
        .bind(ts(first.created_at))
        .execute(&self.pool)
        .await?;
        let rows = sqlx::query("SELECT * FROM signing_keys ORDER BY created_at")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(StoredKey {
                    kid: r.try_get("kid")?,
                    secret: r.try_get("secret")?,
                    created_at: parse_time(r.try_get("created_at")?)?,
                    retires_at: opt_time(r.try_get("retires_at")?)?,
                })
            })
            .collect()
    }

    async fn save_signing_keys(&self, keys: &[StoredKey]) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM signing_keys")
            .execute(&mut *tx)
            .await?;
        for k in keys {
            sqlx::query("INSERT INTO signing_keys (kid, secret, created_at, retires_at) VALUES (?, ?, ?, ?)")
                .bind(&k.kid)
                .bind(&k.secret)
                .bind(ts(k.created_at))
                .bind(k.retires_at.map(ts))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn set_notice_email_state(&self, id: uuid::Uuid, state: &str) -> StoreResult<()> {
        sqlx::query("UPDATE notifications SET email_state = ? WHERE id = ?")
            .bind(state)
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn upsert_base_records(&self, rows: &[BaseRecord]) -> StoreResult<UpsertCounts> {
        let mut counts = UpsertCounts::default();
        if rows.is_empty() {
            return Ok(counts);
        }
        // IMMEDIATE: take the write lock before reading the digests, so a concurrent
        // writer cannot invalidate this transaction's snapshot between read and write.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        for row in rows {
            let digest = row.digest();
            let stored: Option<String> = sqlx::query_scalar(
                "SELECT digest FROM base_records WHERE resource = ? AND subject = ? AND record = ?",
            )
            .bind(&row.resource)
            .bind(&row.subject)
            .bind(&row.record)
            .fetch_optional(&mut *tx)
            .await?;
            match stored {
                Some(d) if d == digest => counts.unchanged += 1,
                Some(_) => {
                    sqlx::query(
                        "UPDATE base_records SET data = ?, digest = ?, updated_at = ? \
                         WHERE resource = ? AND subject = ? AND record = ?",
                    )
                    .bind(row.data.to_string())
                    .bind(&digest)
                    .bind(ts(row.updated_at))
                    .bind(&row.resource)
                    .bind(&row.subject)
                    .bind(&row.record)
                    .execute(&mut *tx)
                    .await?;
                    counts.updated += 1;
                }
                None => {
                    sqlx::query(
                        "INSERT INTO base_records (resource, subject, record, data, digest, updated_at) \
                         VALUES (?, ?, ?, ?, ?, ?)",
                    )
                    .bind(&row.resource)
                    .bind(&row.subject)
                    .bind(&row.record)
                    .bind(row.data.to_string())
                    .bind(&digest)
                    .bind(ts(row.updated_at))
                    .execute(&mut *tx)
                    .await?;
                    counts.added += 1;
                }
            }
        }
        tx.commit().await?;
        Ok(counts)
    }

    async fn base_records(&self, resource: &str, subject: &str) -> StoreResult<Vec<BaseRecord>> {
        let rows = sqlx::query(
            "SELECT resource, subject, record, data, updated_at FROM base_records \
             WHERE resource = ? AND subject = ? ORDER BY record",
        )
        .bind(resource)
        .bind(subject)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let data: String = r.try_get("data")?;
                Ok(BaseRecord {
                    resource: r.try_get("resource")?,
                    subject: r.try_get("subject")?,
                    record: r.try_get("record")?,
                    data: json(&data)?,
                    updated_at: parse_time(r.try_get("updated_at")?)?,
                })
            })
            .collect()
    }

    async fn count_base_records(&self, resource: &str) -> StoreResult<i64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM base_records WHERE resource = ?")
            .bind(resource)
            .fetch_one(&self.pool)
            .await?;
        Ok(n)
    }

    async fn append_data_access(&self, reads: &[NewAccess]) -> StoreResult<()> {
        for read in reads {
            // The hash covers the time at microsecond precision, which is what is stored.
            let read = NewAccess {
                at: read.at.trunc_subsecs(6),
                ..read.clone()
            };
            let mut attempt = 1;
            loop {
                match self.append_access(&read).await {
                    Err(StoreError::Database(e))
                        if super::is_unique_violation(&e) && attempt < APPEND_ATTEMPTS =>
                    {
                        attempt += 1;
                    }
                    other => {
                        other?;
                        break;
                    }
                }
            }
        }
        Ok(())
    }

    async fn data_access(
        &self,
        subject_indexes: &[String],
        limit: i64,
    ) -> StoreResult<Vec<AccessRecord>> {
        if subject_indexes.is_empty() {
            return Ok(Vec::new());
        }
        let mut qb = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "SELECT * FROM data_access WHERE subject_index IN (",
        );
        let mut sep = qb.separated(", ");
        for s in subject_indexes {
            sep.push_bind(s.clone());
        }
        qb.push(") ORDER BY at DESC, seq DESC, id DESC LIMIT ")
            .push_bind(limit);
        let rows = qb.build().fetch_all(&self.pool).await?;
        rows.iter().map(access_from_row).collect()
    }

    async fn data_access_chain(&self, subject_index: &str) -> StoreResult<Vec<AccessRecord>> {
        let rows = sqlx::query("SELECT * FROM data_access WHERE subject_index = ? ORDER BY seq")
            .bind(subject_index)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(access_from_row).collect()
    }

    async fn insert_consent(&self, c: &ConsentRow) -> StoreResult<()> {
        let resources =
            serde_json::to_string(&c.resources).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query(
            "INSERT INTO consents (id, account, service_code, resources, given_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(c.id.to_string())
        .bind(c.account.to_string())
        .bind(&c.service_code)
        .bind(resources)
        .bind(ts(c.given_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn latest_consent(
        &self,
        account: uuid::Uuid,
        service_code: &str,
    ) -> StoreResult<Option<ConsentRow>> {
        let row = sqlx::query(
            "SELECT * FROM consents WHERE account = ? AND service_code = ? \
             ORDER BY given_at DESC, id DESC LIMIT 1",
        )
        .bind(account.to_string())
        .bind(service_code)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            let resources: String = r.try_get("resources")?;
            Ok(ConsentRow {
                id: parse_uuid(r.try_get("id")?)?,
                account: parse_uuid(r.try_get("account")?)?,
                service_code: r.try_get("service_code")?,
                resources: serde_json::from_str(&resources)
                    .map_err(|e| StoreError::Corrupt(format!("bad consent resources: {e}")))?,
                given_at: parse_time(r.try_get("given_at")?)?,
            })
        })
        .transpose()
    }

    async fn secret(&self, name: &str, fresh: &str) -> StoreResult<String> {
        sqlx::query(
            "INSERT INTO secrets (name, value, created_at) VALUES (?, ?, ?) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(fresh)
        .bind(ts(Utc::now()))
        .execute(&self.pool)
        .await?;
        let value: String = sqlx::query_scalar("SELECT value FROM secrets WHERE name = ?")
            .bind(name)
            .fetch_one(&self.pool)
            .await?;
        Ok(value)
    }

    async fn set_data_api(&self, department: &str, url: Option<&str>) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO department_endpoints (department, mode, endpoint, data_api, updated_at) \
             VALUES (?, 'pull', NULL, ?, ?) \
             ON CONFLICT (department) DO UPDATE SET data_api = excluded.data_api, updated_at = excluded.updated_at",
        )
        .bind(department)
        .bind(url)
        .bind(ts(Utc::now()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn sharing_figures(&self) -> StoreResult<Vec<SharingFigures>> {
        let rows = sqlx::query(
            "SELECT c.service_code, COUNT(*) AS cases, \
             COALESCE(SUM(c.fields_filled), 0) AS fields_filled, \
             COALESCE(SUM(c.fields_prefilled), 0) AS fields_prefilled, \
             COALESCE(SUM(m.n), 0) AS materials, COALESCE(SUM(m.s), 0) AS materials_substituted \
             FROM cases c LEFT JOIN ( \
               SELECT case_id, COUNT(*) AS n, SUM(CASE WHEN substituted <> 0 THEN 1 ELSE 0 END) AS s \
               FROM case_materials GROUP BY case_id) m ON m.case_id = c.id \
             GROUP BY c.service_code ORDER BY c.service_code",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SharingFigures {
                    service_code: r.try_get("service_code")?,
                    cases: r.try_get("cases")?,
                    fields_filled: r.try_get("fields_filled")?,
                    fields_prefilled: r.try_get("fields_prefilled")?,
                    materials: r.try_get("materials")?,
                    materials_substituted: r.try_get("materials_substituted")?,
                })
            })
            .collect()
    }

    fn set_sealer(&self, sealer: std::sync::Arc<crate::sharing::seal::Sealer>) {
        self.seal.set(sealer);
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

async fn applied_count(pool: &SqlitePool) -> usize {
    sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(pool)
        .await
        .map(|n| n as usize)
        .unwrap_or(0)
}

type Tx<'a> = sqlx::Transaction<'a, sqlx::Sqlite>;

fn json(s: &str) -> StoreResult<serde_json::Value> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("bad JSON: {e}")))
}

fn opt_date(s: Option<String>) -> StoreResult<Option<chrono::NaiveDate>> {
    s.map(|d| {
        chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d")
            .map_err(|e| StoreError::Corrupt(format!("bad date {d:?}: {e}")))
    })
    .transpose()
}

/// Inserts the idempotency record; when the key was used before, returns that answer.
async fn claim_idem(tx: &mut Tx<'_>, idem: &IdemRecord) -> StoreResult<Option<IdemRecord>> {
    let r = sqlx::query(
        "INSERT INTO idempotency (scope, key, request_hash, status, response, created_at) \
         VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (scope, key) DO NOTHING",
    )
    .bind(&idem.scope)
    .bind(&idem.key)
    .bind(&idem.request_hash)
    .bind(i64::from(idem.status))
    .bind(idem.response.to_string())
    .bind(Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
    .execute(&mut **tx)
    .await?;
    if r.rows_affected() == 1 {
        return Ok(None);
    }
    let row = sqlx::query("SELECT * FROM idempotency WHERE scope = ? AND key = ?")
        .bind(&idem.scope)
        .bind(&idem.key)
        .fetch_one(&mut **tx)
        .await?;
    idem_from_row(&row).map(Some)
}

fn idem_from_row(r: &sqlx::sqlite::SqliteRow) -> StoreResult<IdemRecord> {
    let response: String = r.try_get("response")?;
    Ok(IdemRecord {
        scope: r.try_get("scope")?,
        key: r.try_get("key")?,
        request_hash: r.try_get("request_hash")?,
        status: r.try_get::<i64, _>("status")? as u16,
        response: json(&response)?,
    })
}

/// History entry, materials, uploads, outbox and notices of one case write.
async fn write_side_effects(
    tx: &mut Tx<'_>,
    c: &CaseRow,
    seq: i32,
    w: CaseWrite<'_>,
    seal: &super::RowSeal,
) -> StoreResult<()> {
    let e = w.event;
    sqlx::query(
        "INSERT INTO case_events (case_id, seq, at, actor, actor_id, actor_name, action, from_status, to_status, note, attachments) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(c.id.to_string())
    .bind(i64::from(seq))
    .bind(e.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
    .bind(&e.actor)
    .bind(&e.actor_id)
    .bind(&e.actor_name)
    .bind(&e.action)
    .bind(&e.from_status)
    .bind(&e.to_status)
    .bind(&e.note)
    .bind(e.attachments.to_string())
    .execute(&mut **tx)
    .await?;
    for m in w.materials {
        sqlx::query("INSERT INTO case_materials (case_id, material_id, upload_id, substituted, source, evidence, added_seq) VALUES (?, ?, ?, ?, ?, ?, ?)")
            .bind(c.id.to_string())
            .bind(&m.material_id)
            .bind(m.upload_id.map(|u| u.to_string()))
            .bind(i64::from(m.substituted))
            .bind(&m.source)
            .bind(
                m.evidence
                    .as_ref()
                    .map(|v| seal.json(&super::row_aad("case_materials", "evidence", &format!("{}/{}", c.id, m.material_id)), v).to_string()),
            )
            .bind(i64::from(seq))
            .execute(&mut **tx)
            .await?;
        if let Some(u) = m.upload_id {
            sqlx::query("UPDATE uploads SET case_id = ? WHERE id = ?")
                .bind(c.id.to_string())
                .bind(u.to_string())
                .execute(&mut **tx)
                .await?;
        }
    }
    for o in w.outbox {
        sqlx::query("INSERT INTO outbox (id, case_id, case_seq, event_type, payload, created_at, department) VALUES (?, ?, ?, ?, ?, ?, ?)")
            .bind(o.id.to_string())
            .bind(c.id.to_string())
            .bind(i64::from(seq))
            .bind(&o.event_type)
            .bind(o.payload.to_string())
            .bind(e.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
            .bind(&o.department)
            .execute(&mut **tx)
            .await?;
    }
    for n in w.notices {
        sqlx::query(
            "INSERT INTO notifications (id, account_id, case_id, case_no, title_zh, title_en, body_zh, body_en, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(n.id.to_string())
        .bind(n.account_id.to_string())
        .bind(c.id.to_string())
        .bind(&n.case_no)
        .bind(&n.title_zh)
        .bind(&n.title_en)
        .bind(&n.body_zh)
        .bind(&n.body_en)
        .bind(n.created_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .execute(&mut **tx)
        .await?;
    }
    for read in w.access {
        let read = NewAccess {
            at: read.at.trunc_subsecs(6),
            case_no: Some(c.case_no.clone()),
            ..read.clone()
        };
        append_access_in(tx, &read).await?;
    }
    Ok(())
}

fn case_from_row(r: &sqlx::sqlite::SqliteRow, seal: &super::RowSeal) -> StoreResult<CaseRow> {
    let kind: String = r.try_get("applicant_kind")?;
    let id_number: Option<String> = r.try_get("applicant_id_number")?;
    let form: String = r.try_get("form")?;
    let pauses: String = r.try_get("pauses")?;
    let parts: String = r.try_get("parts")?;
    let id = parse_uuid(r.try_get("id")?)?;
    let aad = |column: &str| super::row_aad("cases", column, &id.to_string());
    let id_number = seal.open_text(&aad("applicant_id_number"), id_number)?;
    let form = seal.open_json(&aad("form"), json(&form)?)?;
    let provenance: String = r.try_get("provenance")?;
    Ok(CaseRow {
        provenance: json(&provenance)?,
        fields_filled: r.try_get::<i64, _>("fields_filled")? as i32,
        fields_prefilled: r.try_get::<i64, _>("fields_prefilled")? as i32,
        id,
        case_no: r.try_get("case_no")?,
        query_code: r.try_get("query_code")?,
        service_code: r.try_get("service_code")?,
        service_version: r.try_get("service_version")?,
        department: r.try_get("department")?,
        applicant: CaseApplicant {
            account_id: r
                .try_get::<Option<String>, _>("applicant_account")?
                .as_deref()
                .map(parse_uuid)
                .transpose()?,
            kind: AccountKind::from_code(&kind)
                .ok_or_else(|| StoreError::Corrupt(format!("case {id}: bad applicant kind")))?,
            name: r.try_get("applicant_name")?,
            id_number: id_number
                .as_deref()
                .map(|s| {
                    ResidentId::parse(s)
                        .map_err(|_| StoreError::Corrupt(format!("case {id}: bad id number")))
                })
                .transpose()?,
            uscc: r.try_get("applicant_uscc")?,
            phone: seal.open_text(&aad("applicant_phone"), r.try_get("applicant_phone")?)?,
        },
        channel: r.try_get("channel")?,
        intake_account: r
            .try_get::<Option<String>, _>("intake_account")?
            .as_deref()
            .map(parse_uuid)
            .transpose()?,
        intake_hall: r.try_get("intake_hall")?,
        status: r.try_get("status")?,
        form,
        accepted_on: opt_date(r.try_get("accepted_on")?)?,
        due_on: opt_date(r.try_get("due_on")?)?,
        legal_due_on: opt_date(r.try_get("legal_due_on")?)?,
        pauses: json(&pauses)?,
        parts: json(&parts)?,
        concluded_on: opt_date(r.try_get("concluded_on")?)?,
        result: r.try_get("result")?,
        rating: r.try_get::<Option<i64>, _>("rating")?.map(|x| x as i16),
        rating_comment: r.try_get("rating_comment")?,
        rated_at: opt_time(r.try_get("rated_at")?)?,
        version: r.try_get("version")?,
        created_at: parse_time(r.try_get("created_at")?)?,
        updated_at: parse_time(r.try_get("updated_at")?)?,
    })
}

fn upload_from_row(r: &sqlx::sqlite::SqliteRow) -> StoreResult<UploadRow> {
    Ok(UploadRow {
        id: parse_uuid(r.try_get("id")?)?,
        owner: parse_uuid(r.try_get("owner")?)?,
        file_name: r.try_get("file_name")?,
        file_type: r.try_get("file_type")?,
        size: r.try_get("size")?,
        sha256: r.try_get("sha256")?,
        storage_key: r.try_get("storage_key")?,
        created_at: parse_time(r.try_get("created_at")?)?,
        case_id: r
            .try_get::<Option<String>, _>("case_id")?
            .as_deref()
            .map(parse_uuid)
            .transpose()?,
    })
}

fn draft_from_row(r: &sqlx::sqlite::SqliteRow, seal: &super::RowSeal) -> StoreResult<DraftRow> {
    let form: String = r.try_get("form")?;
    let id = parse_uuid(r.try_get("id")?)?;
    let form = seal.open_json(
        &super::row_aad("drafts", "form", &id.to_string()),
        json(&form)?,
    )?;
    Ok(DraftRow {
        id,
        account_id: parse_uuid(r.try_get("account_id")?)?,
        service_code: r.try_get("service_code")?,
        form,
        created_at: parse_time(r.try_get("created_at")?)?,
        updated_at: parse_time(r.try_get("updated_at")?)?,
        expires_at: parse_time(r.try_get("expires_at")?)?,
    })
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

const DELIVERY_SELECT: &str = "SELECT o.id, o.case_id, o.case_seq, o.department, o.event_type, o.payload, o.created_at, \
     o.state, o.attempts, o.retry_from, o.next_attempt_at, o.last_status, o.last_error, o.delivered_at, d.endpoint \
     FROM outbox o LEFT JOIN department_endpoints d ON d.department = o.department";

fn delivery_from_row(r: &sqlx::sqlite::SqliteRow) -> StoreResult<Delivery> {
    let payload: String = r.try_get("payload")?;
    Ok(Delivery {
        id: parse_uuid(r.try_get("id")?)?,
        case_id: parse_uuid(r.try_get("case_id")?)?,
        case_seq: r.try_get::<i64, _>("case_seq")? as i32,
        department: r.try_get("department")?,
        event_type: r.try_get("event_type")?,
        payload: json(&payload)?,
        created_at: parse_time(r.try_get("created_at")?)?,
        state: r.try_get("state")?,
        attempts: r.try_get::<i64, _>("attempts")? as i32,
        retry_from: r.try_get::<i64, _>("retry_from")? as i32,
        next_attempt_at: opt_time(r.try_get("next_attempt_at")?)?,
        last_status: r
            .try_get::<Option<i64>, _>("last_status")?
            .map(|s| s as i32),
        last_error: r.try_get("last_error")?,
        delivered_at: opt_time(r.try_get("delivered_at")?)?,
        endpoint: r.try_get("endpoint")?,
    })
}

impl SqliteStore {
    async fn deliveries_by_ids(&self, ids: &[String]) -> StoreResult<Vec<Delivery>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut qb = sqlx::QueryBuilder::<sqlx::Sqlite>::new(DELIVERY_SELECT);
        qb.push(" WHERE o.id IN (");
        let mut sep = qb.separated(", ");
        for id in ids {
            sep.push_bind(id.clone());
        }
        qb.push(") ORDER BY o.created_at, o.id");
        let rows = qb.build().fetch_all(&self.pool).await?;
        rows.iter().map(delivery_from_row).collect()
    }
}

/// How often one read is tried when concurrent appends to its subject's chain collide.
const APPEND_ATTEMPTS: u32 = 8;

impl SqliteStore {
    /// Appends one read (its `at` already at microsecond precision) to its subject's chain.
    async fn append_access(&self, a: &NewAccess) -> StoreResult<()> {
        // IMMEDIATE: writers to the chain queue for the lock (busy timeout) instead of
        // reading the same last record and colliding on (subject_index, seq).
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        append_access_in(&mut tx, a).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Appends one read to its subject's chain inside a transaction that holds (or takes)
/// the write lock: a case write's, or its own.
async fn append_access_in(tx: &mut Tx<'_>, a: &NewAccess) -> StoreResult<()> {
    {
        let last: Option<(i64, String)> = sqlx::query_as(
            "SELECT seq, hash FROM data_access WHERE subject_index = ? ORDER BY seq DESC LIMIT 1",
        )
        .bind(&a.subject_index)
        .fetch_optional(&mut **tx)
        .await?;
        let (seq, prev_hash) = match last {
            Some((seq, hash)) => (seq + 1, hash),
            None => (1, CHAIN_START.to_owned()),
        };
        let id = uuid::Uuid::now_v7();
        let hash = chain_hash(&prev_hash, seq, id, a);
        let items =
            serde_json::to_string(&a.items).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query(
            "INSERT INTO data_access (id, subject_index, seq, at, subject_kind, resource, items, \
             reader_kind, reader_id, reader_name, purpose, service_code, case_no, prev_hash, hash) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id.to_string())
        .bind(&a.subject_index)
        .bind(seq)
        .bind(ts(a.at))
        .bind(&a.subject_kind)
        .bind(&a.resource)
        .bind(items)
        .bind(&a.reader_kind)
        .bind(&a.reader_id)
        .bind(&a.reader_name)
        .bind(&a.purpose)
        .bind(&a.service_code)
        .bind(&a.case_no)
        .bind(&prev_hash)
        .bind(&hash)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

fn access_from_row(r: &sqlx::sqlite::SqliteRow) -> StoreResult<AccessRecord> {
    let items: String = r.try_get("items")?;
    Ok(AccessRecord {
        id: parse_uuid(r.try_get("id")?)?,
        seq: r.try_get("seq")?,
        access: NewAccess {
            subject_index: r.try_get("subject_index")?,
            subject_kind: r.try_get("subject_kind")?,
            at: parse_time(r.try_get("at")?)?,
            resource: r.try_get("resource")?,
            items: serde_json::from_str(&items)
                .map_err(|e| StoreError::Corrupt(format!("bad access items: {e}")))?,
            reader_kind: r.try_get("reader_kind")?,
            reader_id: r.try_get("reader_id")?,
            reader_name: r.try_get("reader_name")?,
            purpose: r.try_get("purpose")?,
            service_code: r.try_get("service_code")?,
            case_no: r.try_get("case_no")?,
        },
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
    })
}

/// The row identity that seals an account's columns: (issuer, subject), which an upsert
/// keeps, unlike the id it draws for a new row.
fn identity_key(who: &crate::auth::identity::Identity) -> String {
    format!("{}\0{}", who.issuer, who.subject)
}

fn account_aad(r: &sqlx::sqlite::SqliteRow, column: &str) -> StoreResult<String> {
    let issuer: String = r.try_get("issuer")?;
    let subject: String = r.try_get("subject")?;
    Ok(super::row_aad(
        "accounts",
        column,
        &format!("{issuer}\0{subject}"),
    ))
}

//! The PostgreSQL store for production: several gateway instances share one database.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use chrono::{DateTime, SubsecRound, Utc};

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

fn token_from_row(r: &sqlx::postgres::PgRow) -> StoreResult<ApiToken> {
    Ok(ApiToken {
        id: r.try_get("id")?,
        department: r.try_get("department")?,
        name: r.try_get("name")?,
        scopes: split_scopes(r.try_get("scopes")?),
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

const TOKEN_COLUMNS: &str = "id, department, name, scopes, created_at, expires_at, revoked_at";

/// PostgreSQL implementation of [`Store`].
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    seal: super::RowSeal,
}

impl PgStore {
    /// Connects a pool; fails when the server does not answer within a few seconds.
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<PgStore> {
        let options = PgConnectOptions::from_str(url)?.application_name("onewindow");
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await?;
        Ok(PgStore {
            pool,
            seal: super::RowSeal::default(),
        })
    }
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn migrate(&self) -> StoreResult<usize> {
        let migrator = sqlx::migrate!("migrations/postgres");
        let before = applied_count(&self.pool).await;
        migrator.run(&self.pool).await?;
        Ok(applied_count(&self.pool).await.saturating_sub(before))
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn record_service_versions(&self, versions: &[ServiceVersion]) -> StoreResult<u64> {
        if versions.is_empty() {
            return Ok(0);
        }
        // One statement for the whole catalogue: one round trip however many services.
        let mut qb = sqlx::QueryBuilder::new(
            "INSERT INTO service_versions (code, version, definition, published_at) ",
        );
        qb.push_values(versions, |mut b, v| {
            b.push_bind(&v.code)
                .push_bind(&v.version)
                .push_bind(&v.definition)
                .push_bind(v.published_at);
        });
        qb.push(" ON CONFLICT (code, version) DO NOTHING");
        let r = qb.build().execute(&self.pool).await?;
        Ok(r.rows_affected())
    }

    async fn service_versions(&self, code: &str) -> StoreResult<Vec<ServiceVersionInfo>> {
        let rows = sqlx::query(
            "SELECT version, published_at FROM service_versions WHERE code = $1 \
             ORDER BY published_at DESC, version",
        )
        .bind(code)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ServiceVersionInfo {
                    version: r.try_get("version")?,
                    published_at: r.try_get("published_at")?,
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
             WHERE code = $1 AND version = $2",
        )
        .bind(code)
        .bind(version)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok::<_, StoreError>(ServiceVersion {
                code: r.try_get("code")?,
                version: r.try_get("version")?,
                definition: r.try_get("definition")?,
                published_at: r.try_get("published_at")?,
            })
        })
        .transpose()
    }

    async fn upsert_account(&self, who: &Identity, now: DateTime<Utc>) -> StoreResult<uuid::Uuid> {
        let roles =
            serde_json::to_value(&who.roles).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let id: uuid::Uuid = sqlx::query_scalar(
            "INSERT INTO accounts (id, issuer, subject, kind, name, id_number, phone, assurance, \
             enterprise_uscc, enterprise_name, enterprise_role, roles, created_at, last_login_at, email) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13, $14) \
             ON CONFLICT (issuer, subject) DO UPDATE SET kind = excluded.kind, name = excluded.name, \
             id_number = excluded.id_number, phone = excluded.phone, email = excluded.email, assurance = excluded.assurance, \
             enterprise_uscc = excluded.enterprise_uscc, enterprise_name = excluded.enterprise_name, \
             enterprise_role = excluded.enterprise_role, roles = excluded.roles, \
             last_login_at = excluded.last_login_at \
             RETURNING id",
        )
        .bind(uuid::Uuid::now_v7())
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
        .bind(i16::from(who.assurance))
        .bind(who.enterprise.as_ref().map(|e| e.uscc.clone()))
        .bind(who.enterprise.as_ref().map(|e| e.name.clone()))
        .bind(who.enterprise.as_ref().map(|e| e.role.clone()))
        .bind(roles)
        .bind(now)
        .bind(self.seal.text(
            &super::row_aad("accounts", "email", &identity_key(who)),
            who.email.as_deref(),
        ))
        .fetch_one(&self.pool)
        .await?;
        Ok(id)
    }

    async fn account(&self, id: uuid::Uuid) -> StoreResult<Option<Account>> {
        let row = sqlx::query("SELECT * FROM accounts WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            AccountRow {
                id: r.try_get("id")?,
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
                assurance: i64::from(r.try_get::<i16, _>("assurance")?),
                enterprise_uscc: r.try_get("enterprise_uscc")?,
                enterprise_name: r.try_get("enterprise_name")?,
                enterprise_role: r.try_get("enterprise_role")?,
                roles: r.try_get("roles")?,
                created_at: r.try_get("created_at")?,
                last_login_at: r.try_get("last_login_at")?,
            }
            .into_account()
        })
        .transpose()
    }

    async fn insert_api_token(&self, t: &ApiToken, token_hash: &str) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO api_tokens (id, department, name, scopes, token_hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(t.id)
        .bind(&t.department)
        .bind(&t.name)
        .bind(t.scopes.join(" "))
        .bind(token_hash)
        .bind(t.created_at)
        .bind(t.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn api_token_by_hash(&self, token_hash: &str) -> StoreResult<Option<ApiToken>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE token_hash = $1"
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
        let r = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(id)
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
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, 1, $24, $25, $26, $27, $28)",
        )
        .bind(c.id)
        .bind(&c.case_no)
        .bind(&c.query_code)
        .bind(&c.service_code)
        .bind(&c.service_version)
        .bind(&c.department)
        .bind(c.applicant.account_id)
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
        .bind(c.intake_account)
        .bind(&c.intake_hall)
        .bind(&c.status)
        .bind(
            self.seal
                .json(&super::row_aad("cases", "form", &c.id.to_string()), &c.form),
        )
        .bind(c.accepted_on)
        .bind(c.due_on)
        .bind(c.legal_due_on)
        .bind(&c.pauses)
        .bind(c.concluded_on)
        .bind(&c.result)
        .bind(c.created_at)
        .bind(c.updated_at)
        .bind(&c.provenance)
        .bind(c.fields_filled)
        .bind(c.fields_prefilled)
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
            "UPDATE cases SET status = $1, form = $2, accepted_on = $3, due_on = $4, legal_due_on = $5, pauses = $6, \
             concluded_on = $7, result = $8, updated_at = $9, version = version + 1, parts = $12 \
             WHERE id = $10 AND version = $11",
        )
        .bind(&c.status)
        .bind(
            self.seal
                .json(&super::row_aad("cases", "form", &c.id.to_string()), &c.form),
        )
        .bind(c.accepted_on)
        .bind(c.due_on)
        .bind(c.legal_due_on)
        .bind(&c.pauses)
        .bind(c.concluded_on)
        .bind(&c.result)
        .bind(c.updated_at)
        .bind(c.id)
        .bind(c.version)
        .bind(&c.parts)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(WriteOutcome::Conflict);
        }
        let seq: i32 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM case_events WHERE case_id = $1",
        )
        .bind(c.id)
        .fetch_one(&mut *tx)
        .await?;
        write_side_effects(&mut tx, c, seq, w, &self.seal).await?;
        tx.commit().await?;
        Ok(WriteOutcome::Done)
    }

    async fn case_by_id(&self, id: uuid::Uuid) -> StoreResult<Option<CaseRow>> {
        let row = sqlx::query("SELECT * FROM cases WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref()
            .map(|r| case_from_row(r, &self.seal))
            .transpose()
    }

    async fn case_by_no(&self, case_no: &str) -> StoreResult<Option<CaseRow>> {
        let row = sqlx::query("SELECT * FROM cases WHERE case_no = $1")
            .bind(case_no)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref()
            .map(|r| case_from_row(r, &self.seal))
            .transpose()
    }

    async fn case_events(&self, case_id: uuid::Uuid) -> StoreResult<Vec<EventRow>> {
        let rows = sqlx::query("SELECT * FROM case_events WHERE case_id = $1 ORDER BY seq")
            .bind(case_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let att: serde_json::Value = r.try_get("attachments")?;
                Ok(EventRow {
                    seq: r.try_get::<i32, _>("seq")?,
                    at: r.try_get("at")?,
                    actor: r.try_get("actor")?,
                    actor_id: r.try_get("actor_id")?,
                    actor_name: r.try_get("actor_name")?,
                    action: r.try_get("action")?,
                    from_status: r.try_get("from_status")?,
                    to_status: r.try_get("to_status")?,
                    note: r.try_get("note")?,
                    attachments: att,
                })
            })
            .collect()
    }

    async fn case_materials(&self, case_id: uuid::Uuid) -> StoreResult<Vec<MaterialRow>> {
        let rows = sqlx::query(
            "SELECT m.material_id, m.upload_id, m.substituted, m.source, m.evidence, m.added_seq, \
             u.file_name, u.file_type, u.size, u.sha256 \
             FROM case_materials m LEFT JOIN uploads u ON u.id = m.upload_id \
             WHERE m.case_id = $1 ORDER BY m.added_seq, m.ctid",
        )
        .bind(case_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(MaterialRow {
                    evidence: {
                        let material_id: String = r.try_get("material_id")?;
                        r.try_get::<Option<serde_json::Value>, _>("evidence")?
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
                            .transpose()?
                    },
                    material_id: r.try_get("material_id")?,
                    upload_id: r.try_get("upload_id")?,
                    substituted: r.try_get::<bool, _>("substituted")?,
                    source: r.try_get("source")?,
                    added_seq: r.try_get::<i32, _>("added_seq")?,
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
            let mut qb = sqlx::QueryBuilder::<sqlx::Postgres>::new(select);
            qb.push(" WHERE 1 = 1");
            if let Some(a) = f.applicant {
                qb.push(" AND applicant_account = ").push_bind(a);
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
                qb.push(" AND due_on <= ").push_bind(d);
            }
            if let Some(t) = f.updated_since {
                qb.push(" AND updated_at >= ").push_bind(t);
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
        let rows = sqlx::query("SELECT id, case_seq, department, event_type, payload FROM outbox WHERE case_id = $1 ORDER BY case_seq, id")
            .bind(case_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let payload: serde_json::Value = r.try_get("payload")?;
                Ok(OutboxRow {
                    id: r.try_get("id")?,
                    case_seq: r.try_get::<i32, _>("case_seq")?,
                    department: r.try_get("department")?,
                    event_type: r.try_get("event_type")?,
                    payload,
                })
            })
            .collect()
    }

    async fn idempotent(&self, scope: &str, key: &str) -> StoreResult<Option<IdemRecord>> {
        let row = sqlx::query("SELECT * FROM idempotency WHERE scope = $1 AND key = $2")
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
            "UPDATE cases SET rating = $1, rating_comment = $2, rated_at = $3 WHERE id = $4 AND rating IS NULL",
        )
        .bind(rating)
        .bind(comment)
        .bind(at)
        .bind(case_id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn insert_upload(&self, u: &UploadRow) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO uploads (id, owner, file_name, file_type, size, sha256, storage_key, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(u.id)
        .bind(u.owner)
        .bind(&u.file_name)
        .bind(&u.file_type)
        .bind(u.size)
        .bind(&u.sha256)
        .bind(&u.storage_key)
        .bind(u.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn upload(&self, id: uuid::Uuid) -> StoreResult<Option<UploadRow>> {
        let row = sqlx::query("SELECT * FROM uploads WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(upload_from_row).transpose()
    }

    async fn remove_stale_uploads(&self, before: DateTime<Utc>) -> StoreResult<Vec<UploadRow>> {
        let rows = sqlx::query(
            "DELETE FROM uploads WHERE case_id IS NULL AND created_at < $1 RETURNING *",
        )
        .bind(before)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(upload_from_row).collect()
    }

    async fn save_draft(&self, d: &DraftRow) -> StoreResult<bool> {
        let r = sqlx::query(
            "INSERT INTO drafts (id, account_id, service_code, form, created_at, updated_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (id) DO UPDATE SET form = excluded.form, updated_at = excluded.updated_at, \
             expires_at = excluded.expires_at WHERE drafts.account_id = excluded.account_id \
             AND drafts.service_code = excluded.service_code",
        )
        .bind(d.id)
        .bind(d.account_id)
        .bind(&d.service_code)
        .bind(
            self.seal
                .json(&super::row_aad("drafts", "form", &d.id.to_string()), &d.form),
        )
        .bind(d.created_at)
        .bind(d.updated_at)
        .bind(d.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn draft(&self, id: uuid::Uuid, owner: uuid::Uuid) -> StoreResult<Option<DraftRow>> {
        let row = sqlx::query("SELECT * FROM drafts WHERE id = $1 AND account_id = $2")
            .bind(id)
            .bind(owner)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref()
            .map(|r| draft_from_row(r, &self.seal))
            .transpose()
    }

    async fn drafts(&self, owner: uuid::Uuid) -> StoreResult<Vec<DraftRow>> {
        let rows =
            sqlx::query("SELECT * FROM drafts WHERE account_id = $1 ORDER BY updated_at DESC")
                .bind(owner)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(|r| draft_from_row(r, &self.seal)).collect()
    }

    async fn delete_draft(&self, id: uuid::Uuid, owner: uuid::Uuid) -> StoreResult<bool> {
        let r = sqlx::query("DELETE FROM drafts WHERE id = $1 AND account_id = $2")
            .bind(id)
            .bind(owner)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn purge_expired_drafts(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        let r = sqlx::query("DELETE FROM drafts WHERE expires_at < $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    async fn notifications(&self, account: uuid::Uuid, limit: i64) -> StoreResult<Vec<NoticeRow>> {
        let rows = sqlx::query("SELECT * FROM notifications WHERE account_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2")
            .bind(account)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(NoticeRow {
                    id: r.try_get("id")?,
                    account_id: r.try_get("account_id")?,
                    case_id: r.try_get("case_id")?,
                    case_no: r.try_get("case_no")?,
                    title_zh: r.try_get("title_zh")?,
                    title_en: r.try_get("title_en")?,
                    body_zh: r.try_get("body_zh")?,
                    body_en: r.try_get("body_en")?,
                    created_at: r.try_get("created_at")?,
                    read_at: r.try_get("read_at")?,
                })
            })
            .collect()
    }

    async fn set_endpoint(&self, e: &DepartmentEndpoint) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO department_endpoints (department, mode, endpoint, data_api, updated_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (department) DO UPDATE SET mode = excluded.mode, endpoint = excluded.endpoint, \
             data_api = COALESCE(excluded.data_api, department_endpoints.data_api), updated_at = excluded.updated_at",
        )
        .bind(&e.department)
        .bind(&e.mode)
        .bind(&e.endpoint)
        .bind(&e.data_api)
        .bind(e.updated_at)
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
                    updated_at: r.try_get("updated_at")?,
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
        let ids: Vec<uuid::Uuid> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "UPDATE outbox SET lease_until = $1 WHERE id IN ( \
               SELECT o.id FROM outbox o JOIN department_endpoints d ON d.department = o.department AND d.mode = 'push' \
               WHERE o.state = 'pending' AND (o.next_attempt_at IS NULL OR o.next_attempt_at <= $2) \
                 AND (o.lease_until IS NULL OR o.lease_until < $3) \
                 AND {NEXT_IN_ORDER} \
               ORDER BY o.created_at, o.id LIMIT $4 FOR UPDATE OF o SKIP LOCKED) \
             RETURNING id"
        )))
        .bind(lease_until)
        .bind(now)
        .bind(now)
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
        sqlx::query("INSERT INTO delivery_attempts (event_id, attempt, at, status, latency_ms, error) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(event_id)
            .bind(a.attempt)
            .bind(a.at)
            .bind(a.status)
            .bind(a.latency_ms.clamp(0, i64::from(i32::MAX)) as i32)
            .bind(&a.error)
            .execute(&mut *tx)
            .await?;
        let (state, next, delivered) = match outcome {
            AttemptOutcome::Delivered => ("delivered", None, Some(a.at)),
            AttemptOutcome::RetryAt(t) => ("pending", Some(t), None),
            AttemptOutcome::Dead => ("dead", None, None),
        };
        sqlx::query(
            "UPDATE outbox SET state = $1, attempts = $2, next_attempt_at = $3, delivered_at = $4, lease_until = NULL, \
             last_status = $5, last_error = $6 WHERE id = $7",
        )
        .bind(state)
        .bind(a.attempt)
        .bind(next)
        .bind(delivered)
        .bind(a.status)
        .bind(&a.error)
        .bind(event_id)
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
        let ids: Vec<uuid::Uuid> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "UPDATE outbox SET lease_until = $1 WHERE id IN ( \
               SELECT o.id FROM outbox o \
               WHERE o.department = $2 AND o.state = 'pending' \
                 AND NOT EXISTS (SELECT 1 FROM department_endpoints d WHERE d.department = o.department AND d.mode = 'push') \
                 AND (o.lease_until IS NULL OR o.lease_until < $3) \
                 AND {NEXT_IN_ORDER} \
               ORDER BY o.created_at, o.id LIMIT $4 FOR UPDATE OF o SKIP LOCKED) \
             RETURNING id"
        )))
        .bind(lease_until)
        .bind(department)
        .bind(now)
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
            "UPDATE outbox SET state = 'delivered', delivered_at = $1, lease_until = NULL \
             WHERE id = $2 AND department = $3 AND state = 'pending'",
        )
        .bind(now)
        .bind(event_id)
        .bind(department)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn deliveries(&self, f: &DeliveryFilter) -> StoreResult<Vec<Delivery>> {
        let mut qb = sqlx::QueryBuilder::<sqlx::Postgres>::new(DELIVERY_SELECT);
        qb.push(" WHERE 1 = 1");
        if let Some(s) = &f.state {
            qb.push(" AND o.state = ").push_bind(s.clone());
        }
        if let Some(d) = &f.department {
            qb.push(" AND o.department = ").push_bind(d.clone());
        }
        if let Some(c) = f.case_id {
            qb.push(" AND o.case_id = ").push_bind(c);
        }
        qb.push(" ORDER BY o.created_at, o.id LIMIT ")
            .push_bind(f.limit);
        let rows = qb.build().fetch_all(&self.pool).await?;
        rows.iter().map(delivery_from_row).collect()
    }

    async fn redeliver(&self, event_id: uuid::Uuid) -> StoreResult<bool> {
        let r = sqlx::query(
            "UPDATE outbox SET state = 'pending', retry_from = attempts, next_attempt_at = NULL, lease_until = NULL \
             WHERE id = $1 AND state = 'dead'",
        )
        .bind(event_id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn attempts(&self, event_id: uuid::Uuid) -> StoreResult<Vec<AttemptRow>> {
        let rows =
            sqlx::query("SELECT * FROM delivery_attempts WHERE event_id = $1 ORDER BY attempt")
                .bind(event_id)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                Ok(AttemptRow {
                    attempt: r.try_get::<i32, _>("attempt")?,
                    at: r.try_get("at")?,
                    status: r.try_get::<Option<i32>, _>("status")?,
                    latency_ms: i64::from(r.try_get::<i32, _>("latency_ms")?),
                    error: r.try_get("error")?,
                })
            })
            .collect()
    }

    async fn ensure_signing_key(&self, first: &StoredKey) -> StoreResult<Vec<StoredKey>> {
        sqlx::query(
            "INSERT INTO signing_keys (kid, secret, created_at, retires_at) \
             SELECT $1, $2, $3, NULL WHERE NOT EXISTS (SELECT 1 FROM signing_keys)",
        )
        .bind(&first.kid)
        .bind(&first.secret)
        .bind(first.created_at)
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
                    created_at: r.try_get("created_at")?,
                    retires_at: r.try_get("retires_at")?,
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
            sqlx::query("INSERT INTO signing_keys (kid, secret, created_at, retires_at) VALUES ($1, $2, $3, $4)")
                .bind(&k.kid)
                .bind(&k.secret)
                .bind(k.created_at)
                .bind(k.retires_at)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn set_notice_email_state(&self, id: uuid::Uuid, state: &str) -> StoreResult<()> {
        sqlx::query("UPDATE notifications SET email_state = $1 WHERE id = $2")
            .bind(state)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn upsert_base_records(&self, rows: &[BaseRecord]) -> StoreResult<UpsertCounts> {
        let mut counts = UpsertCounts::default();
        if rows.is_empty() {
            return Ok(counts);
        }
        let mut tx = self.pool.begin().await?;
        // One round trip for the stored digests of the whole batch …
        let (resources, subjects, records): (Vec<&str>, Vec<&str>, Vec<&str>) = rows
            .iter()
            .map(|r| (r.resource.as_str(), r.subject.as_str(), r.record.as_str()))
            .collect();
        let stored: Vec<(String, String, String, String)> = sqlx::query_as(
            "SELECT b.resource, b.subject, b.record, b.digest FROM base_records b \
             JOIN UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[]) AS k (resource, subject, record) \
             ON b.resource = k.resource AND b.subject = k.subject AND b.record = k.record",
        )
        .bind(&resources)
        .bind(&subjects)
        .bind(&records)
        .fetch_all(&mut *tx)
        .await?;
        let mut current: HashMap<(&str, &str, &str), String> = HashMap::new();
        for (resource, subject, record, digest) in &stored {
            current.insert(
                (resource.as_str(), subject.as_str(), record.as_str()),
                digest.clone(),
            );
        }
        // … classified in order, as if the rows were written one by one; a record named
        // twice in the batch is written once, with its last data.
        let mut writes: HashMap<(&str, &str, &str), (&BaseRecord, String)> = HashMap::new();
        for row in rows {
            let key = (
                row.resource.as_str(),
                row.subject.as_str(),
                row.record.as_str(),
            );
            let digest = row.digest();
            match current.get(&key) {
                Some(d) if *d == digest => {
                    counts.unchanged += 1;
                    continue;
                }
                Some(_) => counts.updated += 1,
                None => counts.added += 1,
            }
            current.insert(key, digest.clone());
            writes.insert(key, (row, digest));
        }
        // … and one statement per chunk for the writes, in key order (a consistent lock
        // order for concurrent importers). The WHERE keeps a record whose data ends up
        // as stored untouched, `updated_at` included.
        let mut writes: Vec<_> = writes.into_iter().collect();
        writes.sort_by(|a, b| a.0.cmp(&b.0));
        for chunk in writes.chunks(5000) {
            let mut qb = sqlx::QueryBuilder::<sqlx::Postgres>::new(
                "INSERT INTO base_records (resource, subject, record, data, digest, updated_at) ",
            );
            qb.push_values(chunk, |mut b, (_, (row, digest))| {
                b.push_bind(&row.resource)
                    .push_bind(&row.subject)
                    .push_bind(&row.record)
                    .push_bind(&row.data)
                    .push_bind(digest.as_str())
                    .push_bind(row.updated_at);
            });
            qb.push(
                " ON CONFLICT (resource, subject, record) DO UPDATE SET data = excluded.data, \
                 digest = excluded.digest, updated_at = excluded.updated_at \
                 WHERE base_records.digest <> excluded.digest",
            );
            qb.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(counts)
    }

    async fn base_records(&self, resource: &str, subject: &str) -> StoreResult<Vec<BaseRecord>> {
        let rows = sqlx::query(
            "SELECT resource, subject, record, data, updated_at FROM base_records \
             WHERE resource = $1 AND subject = $2 ORDER BY record",
        )
        .bind(resource)
        .bind(subject)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(BaseRecord {
                    resource: r.try_get("resource")?,
                    subject: r.try_get("subject")?,
                    record: r.try_get("record")?,
                    data: r.try_get("data")?,
                    updated_at: r.try_get("updated_at")?,
                })
            })
            .collect()
    }

    async fn count_base_records(&self, resource: &str) -> StoreResult<i64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM base_records WHERE resource = $1")
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
        let mut qb = sqlx::QueryBuilder::<sqlx::Postgres>::new(
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
        let rows = sqlx::query("SELECT * FROM data_access WHERE subject_index = $1 ORDER BY seq")
            .bind(subject_index)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(access_from_row).collect()
    }

    async fn insert_consent(&self, c: &ConsentRow) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO consents (id, account, service_code, resources, given_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(c.id)
        .bind(c.account)
        .bind(&c.service_code)
        .bind(serde_json::json!(c.resources))
        .bind(c.given_at)
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
            "SELECT * FROM consents WHERE account = $1 AND service_code = $2 \
             ORDER BY given_at DESC, id DESC LIMIT 1",
        )
        .bind(account)
        .bind(service_code)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            let resources: serde_json::Value = r.try_get("resources")?;
            Ok(ConsentRow {
                id: r.try_get("id")?,
                account: r.try_get("account")?,
                service_code: r.try_get("service_code")?,
                resources: serde_json::from_value(resources)
                    .map_err(|e| StoreError::Corrupt(format!("bad consent resources: {e}")))?,
                given_at: r.try_get("given_at")?,
            })
        })
        .transpose()
    }

    async fn secret(&self, name: &str, fresh: &str) -> StoreResult<String> {
        sqlx::query(
            "INSERT INTO secrets (name, value, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(fresh)
        .bind(Utc::now())
        .execute(&self.pool)
        .await?;
        let value: String = sqlx::query_scalar("SELECT value FROM secrets WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await?;
        Ok(value)
    }

    async fn set_data_api(&self, department: &str, url: Option<&str>) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO department_endpoints (department, mode, endpoint, data_api, updated_at) \
             VALUES ($1, 'pull', NULL, $2, $3) \
             ON CONFLICT (department) DO UPDATE SET data_api = excluded.data_api, updated_at = excluded.updated_at",
        )
        .bind(department)
        .bind(url)
        .bind(Utc::now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn sharing_figures(&self) -> StoreResult<Vec<SharingFigures>> {
        let rows = sqlx::query(
            "SELECT c.service_code, COUNT(*) AS cases, \
             COALESCE(SUM(c.fields_filled), 0)::BIGINT AS fields_filled, \
             COALESCE(SUM(c.fields_prefilled), 0)::BIGINT AS fields_prefilled, \
             COALESCE(SUM(m.n), 0)::BIGINT AS materials, \
             COALESCE(SUM(m.s), 0)::BIGINT AS materials_substituted \
             FROM cases c LEFT JOIN ( \
               SELECT case_id, COUNT(*) AS n, COUNT(*) FILTER (WHERE substituted) AS s \
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

async fn applied_count(pool: &PgPool) -> usize {
    sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(pool)
        .await
        .map(|n| n as usize)
        .unwrap_or(0)
}

type Tx<'a> = sqlx::Transaction<'a, sqlx::Postgres>;

/// Inserts the idempotency record; when the key was used before, returns that answer.
async fn claim_idem(tx: &mut Tx<'_>, idem: &IdemRecord) -> StoreResult<Option<IdemRecord>> {
    let r = sqlx::query(
        "INSERT INTO idempotency (scope, key, request_hash, status, response, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (scope, key) DO NOTHING",
    )
    .bind(&idem.scope)
    .bind(&idem.key)
    .bind(&idem.request_hash)
    .bind(idem.status as i16)
    .bind(&idem.response)
    .bind(Utc::now())
    .execute(&mut **tx)
    .await?;
    if r.rows_affected() == 1 {
        return Ok(None);
    }
    let row = sqlx::query("SELECT * FROM idempotency WHERE scope = $1 AND key = $2")
        .bind(&idem.scope)
        .bind(&idem.key)
        .fetch_one(&mut **tx)
        .await?;
    idem_from_row(&row).map(Some)
}

fn idem_from_row(r: &sqlx::postgres::PgRow) -> StoreResult<IdemRecord> {
    let response: serde_json::Value = r.try_get("response")?;
    Ok(IdemRecord {
        scope: r.try_get("scope")?,
        key: r.try_get("key")?,
        request_hash: r.try_get("request_hash")?,
        status: r.try_get::<i16, _>("status")? as u16,
        response,
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
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(c.id)
    .bind(seq)
    .bind(e.at)
    .bind(&e.actor)
    .bind(&e.actor_id)
    .bind(&e.actor_name)
    .bind(&e.action)
    .bind(&e.from_status)
    .bind(&e.to_status)
    .bind(&e.note)
    .bind(&e.attachments)
    .execute(&mut **tx)
    .await?;
    for m in w.materials {
        sqlx::query("INSERT INTO case_materials (case_id, material_id, upload_id, substituted, source, added_seq, evidence) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(c.id)
            .bind(&m.material_id)
            .bind(m.upload_id)
            .bind(m.substituted)
            .bind(&m.source)
            .bind(seq)
            .bind(m.evidence.as_ref().map(|v| seal.json(&super::row_aad("case_materials", "evidence", &format!("{}/{}", c.id, m.material_id)), v)))
            .execute(&mut **tx)
            .await?;
        if let Some(u) = m.upload_id {
            sqlx::query("UPDATE uploads SET case_id = $1 WHERE id = $2")
                .bind(c.id)
                .bind(u)
                .execute(&mut **tx)
                .await?;
        }
    }
    for o in w.outbox {
        sqlx::query("INSERT INTO outbox (id, case_id, case_seq, event_type, payload, created_at, department) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(o.id)
            .bind(c.id)
            .bind(seq)
            .bind(&o.event_type)
            .bind(&o.payload)
            .bind(e.at)
            .bind(&o.department)
            .execute(&mut **tx)
            .await?;
    }
    for n in w.notices {
        sqlx::query(
            "INSERT INTO notifications (id, account_id, case_id, case_no, title_zh, title_en, body_zh, body_en, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(n.id)
        .bind(n.account_id)
        .bind(c.id)
        .bind(&n.case_no)
        .bind(&n.title_zh)
        .bind(&n.title_en)
        .bind(&n.body_zh)
        .bind(&n.body_en)
        .bind(n.created_at)
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

fn case_from_row(r: &sqlx::postgres::PgRow, seal: &super::RowSeal) -> StoreResult<CaseRow> {
    let kind: String = r.try_get("applicant_kind")?;
    let id_number: Option<String> = r.try_get("applicant_id_number")?;
    let form: serde_json::Value = r.try_get("form")?;
    let pauses: serde_json::Value = r.try_get("pauses")?;
    let parts: serde_json::Value = r.try_get("parts")?;
    let id: uuid::Uuid = r.try_get("id")?;
    let aad = |column: &str| super::row_aad("cases", column, &id.to_string());
    let id_number = seal.open_text(&aad("applicant_id_number"), id_number)?;
    let form = seal.open_json(&aad("form"), form)?;
    Ok(CaseRow {
        provenance: r.try_get("provenance")?,
        fields_filled: r.try_get("fields_filled")?,
        fields_prefilled: r.try_get("fields_prefilled")?,
        id,
        case_no: r.try_get("case_no")?,
        query_code: r.try_get("query_code")?,
        service_code: r.try_get("service_code")?,
        service_version: r.try_get("service_version")?,
        department: r.try_get("department")?,
        applicant: CaseApplicant {
            account_id: r.try_get("applicant_account")?,
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
        intake_account: r.try_get("intake_account")?,
        intake_hall: r.try_get("intake_hall")?,
        status: r.try_get("status")?,
        form,
        accepted_on: r.try_get("accepted_on")?,
        due_on: r.try_get("due_on")?,
        legal_due_on: r.try_get("legal_due_on")?,
        pauses,
        parts,
        concluded_on: r.try_get("concluded_on")?,
        result: r.try_get("result")?,
        rating: r.try_get::<Option<i16>, _>("rating")?,
        rating_comment: r.try_get("rating_comment")?,
        rated_at: r.try_get("rated_at")?,
        version: r.try_get("version")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn upload_from_row(r: &sqlx::postgres::PgRow) -> StoreResult<UploadRow> {
    Ok(UploadRow {
        id: r.try_get("id")?,
        owner: r.try_get("owner")?,
        file_name: r.try_get("file_name")?,
        file_type: r.try_get("file_type")?,
        size: r.try_get("size")?,
        sha256: r.try_get("sha256")?,
        storage_key: r.try_get("storage_key")?,
        created_at: r.try_get("created_at")?,
        case_id: r.try_get("case_id")?,
    })
}

fn draft_from_row(r: &sqlx::postgres::PgRow, seal: &super::RowSeal) -> StoreResult<DraftRow> {
    let id: uuid::Uuid = r.try_get("id")?;
    let form = seal.open_json(
        &super::row_aad("drafts", "form", &id.to_string()),
        r.try_get("form")?,
    )?;
    Ok(DraftRow {
        id,
        account_id: r.try_get("account_id")?,
        service_code: r.try_get("service_code")?,
        form,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        expires_at: r.try_get("expires_at")?,
    })
}

const DELIVERY_SELECT: &str = "SELECT o.id, o.case_id, o.case_seq, o.department, o.event_type, o.payload, o.created_at, \
     o.state, o.attempts, o.retry_from, o.next_attempt_at, o.last_status, o.last_error, o.delivered_at, d.endpoint \
     FROM outbox o LEFT JOIN department_endpoints d ON d.department = o.department";

fn delivery_from_row(r: &sqlx::postgres::PgRow) -> StoreResult<Delivery> {
    let payload: serde_json::Value = r.try_get("payload")?;
    Ok(Delivery {
        id: r.try_get("id")?,
        case_id: r.try_get("case_id")?,
        case_seq: r.try_get::<i32, _>("case_seq")?,
        department: r.try_get("department")?,
        event_type: r.try_get("event_type")?,
        payload,
        created_at: r.try_get("created_at")?,
        state: r.try_get("state")?,
        attempts: r.try_get::<i32, _>("attempts")?,
        retry_from: r.try_get::<i32, _>("retry_from")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        last_status: r.try_get::<Option<i32>, _>("last_status")?,
        last_error: r.try_get("last_error")?,
        delivered_at: r.try_get("delivered_at")?,
        endpoint: r.try_get("endpoint")?,
    })
}

impl PgStore {
    async fn deliveries_by_ids(&self, ids: &[uuid::Uuid]) -> StoreResult<Vec<Delivery>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut qb = sqlx::QueryBuilder::<sqlx::Postgres>::new(DELIVERY_SELECT);
        qb.push(" WHERE o.id IN (");
        let mut sep = qb.separated(", ");
        for id in ids {
            sep.push_bind(*id);
        }
        qb.push(") ORDER BY o.created_at, o.id");
        let rows = qb.build().fetch_all(&self.pool).await?;
        rows.iter().map(delivery_from_row).collect()
    }
}

/// How often one read is tried when concurrent appends to its subject's chain collide.
const APPEND_ATTEMPTS: u32 = 8;

/// The advisory-lock class of the audit chains (the two-key form: its own key space).
const CHAIN_LOCK_CLASS: i32 = 0x6F77_6461; // "owda"

/// The advisory-lock key of a subject's chain (subjects sharing one merely queue together).
fn chain_lock_key(subject_index: &str) -> i32 {
    use sha2::Digest;
    let d = sha2::Sha256::digest(subject_index.as_bytes());
    i32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

impl PgStore {
    /// Appends one read (its `at` already at microsecond precision) to its subject's chain.
    async fn append_access(&self, a: &NewAccess) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        append_access_in(&mut tx, a).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Appends one read to its subject's chain inside a transaction (a case write's, or its
/// own).
async fn append_access_in(tx: &mut Tx<'_>, a: &NewAccess) -> StoreResult<()> {
    {
        // Appends to one chain queue here rather than reading the same last record and
        // colliding on (subject_index, seq); the caller still retries on a collision.
        sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
            .bind(CHAIN_LOCK_CLASS)
            .bind(chain_lock_key(&a.subject_index))
            .execute(&mut **tx)
            .await?;
        let last: Option<(i64, String)> = sqlx::query_as(
            "SELECT seq, hash FROM data_access WHERE subject_index = $1 ORDER BY seq DESC LIMIT 1",
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
        sqlx::query(
            "INSERT INTO data_access (id, subject_index, seq, at, subject_kind, resource, items, \
             reader_kind, reader_id, reader_name, purpose, service_code, case_no, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(id)
        .bind(&a.subject_index)
        .bind(seq)
        .bind(a.at)
        .bind(&a.subject_kind)
        .bind(&a.resource)
        .bind(serde_json::json!(a.items))
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

fn access_from_row(r: &sqlx::postgres::PgRow) -> StoreResult<AccessRecord> {
    let items: serde_json::Value = r.try_get("items")?;
    Ok(AccessRecord {
        id: r.try_get("id")?,
        seq: r.try_get("seq")?,
        access: NewAccess {
            subject_index: r.try_get("subject_index")?,
            subject_kind: r.try_get("subject_kind")?,
            at: r.try_get("at")?,
            resource: r.try_get("resource")?,
            items: serde_json::from_value(items)
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

fn account_aad(r: &sqlx::postgres::PgRow, column: &str) -> StoreResult<String> {
    let issuer: String = r.try_get("issuer")?;
    let subject: String = r.try_get("subject")?;
    Ok(super::row_aad(
        "accounts",
        column,
        &format!("{issuer}\0{subject}"),
    ))
}

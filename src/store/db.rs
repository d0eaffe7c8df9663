//! The dialect-neutral query layer under the one store implementation.
//!
//! SQLite and PostgreSQL run the same SQL for nearly every store method: what differs
//! is how a value travels (SQLite keeps uuids and timestamps as text, PostgreSQL has
//! native types) and a handful of dialect details. So a method builds one [`Q`] (SQL
//! written once with `$1, $2 …` placeholders, which sqlx-sqlite accepts as well, and
//! typed binds), runs it on a [`Db`] or a [`Tx`], and reads typed columns from a
//! [`Row`]. Each of those matches the backend exactly once, here; a store method never
//! does.
//!
//! Stored encodings on SQLite are those the existing databases already hold, so an old
//! file needs no data migration:
//! - uuids as hyphenated lowercase text;
//! - timestamps as fixed-width RFC 3339 text with six fraction digits and `Z`
//!   (`2026-01-02T03:04:05.000000Z`). Fixed width matters: `ORDER BY` and `<` compare
//!   the text, and sqlx's own encoding drops trailing zero digits, which would sort
//!   `…05.1Z` after `…05.09Z`;
//! - JSON as text, booleans as 0/1, dates as `YYYY-MM-DD`.
//!
//! The dialect differences that remain are methods of [`Db`] and [`Tx`]: connecting,
//! the migrations folder, `BEGIN IMMEDIATE`, advisory locks, `FOR
//! UPDATE … SKIP LOCKED` and the physical row order.

use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::types::Json;
use sqlx::{
    AssertSqlSafe, ConnectOptions, Database, Decode, Encode, Executor, IntoArguments, Postgres,
    Row as _, Sqlite, Type,
};
use uuid::Uuid;

use super::sqlite_writer::{Writer, WriterTx, may_write};
use super::{StoreError, StoreResult};

/// A value bound to a placeholder. `From` conversions pick the variant, so a call site
/// writes `.bind(c.id)` or `.bind(&c.case_no)` and never names a backend.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    /// Encoded alike by both backends.
    Alike(Alike),
    /// A uuid: native on PostgreSQL, hyphenated text on SQLite.
    Id(Option<Uuid>),
    /// A timestamp: native on PostgreSQL, fixed-width RFC 3339 text on SQLite.
    Time(Option<DateTime<Utc>>),
}

/// The values whose sqlx encoding is already what both schemas hold.
#[derive(Debug, Clone)]
pub(crate) enum Alike {
    Text(Option<String>),
    I16(Option<i16>),
    I32(Option<i32>),
    I64(Option<i64>),
    Bool(Option<bool>),
    Date(Option<NaiveDate>),
    /// JSONB on PostgreSQL, JSON text on SQLite.
    Json(Option<Json<Value>>),
    /// BYTEA on PostgreSQL, BLOB on SQLite.
    Bytes(Option<Vec<u8>>),
}

/// `From<T>` and `From<Option<T>>` for `Arg`, through the variant `T` travels in.
macro_rules! arg_from {
    ($($t:ty => $make:expr),* $(,)?) => {$(
        impl From<$t> for Arg {
            fn from(v: $t) -> Arg {
                $make(Some(v))
            }
        }
        impl From<Option<$t>> for Arg {
            fn from(v: Option<$t>) -> Arg {
                $make(v)
            }
        }
    )*};
}

arg_from! {
    String => |v| Arg::Alike(Alike::Text(v)),
    i16 => |v| Arg::Alike(Alike::I16(v)),
    i32 => |v| Arg::Alike(Alike::I32(v)),
    i64 => |v| Arg::Alike(Alike::I64(v)),
    bool => |v| Arg::Alike(Alike::Bool(v)),
    NaiveDate => |v| Arg::Alike(Alike::Date(v)),
    Value => |v: Option<Value>| Arg::Alike(Alike::Json(v.map(Json))),
    Vec<u8> => |v| Arg::Alike(Alike::Bytes(v)),
    Uuid => Arg::Id,
    DateTime<Utc> => Arg::Time,
}

impl From<&str> for Arg {
    fn from(v: &str) -> Arg {
        Arg::from(v.to_owned())
    }
}

impl From<&String> for Arg {
    fn from(v: &String) -> Arg {
        Arg::from(v.clone())
    }
}

impl From<Option<&str>> for Arg {
    fn from(v: Option<&str>) -> Arg {
        Arg::from(v.map(str::to_owned))
    }
}

impl From<&Option<String>> for Arg {
    fn from(v: &Option<String>) -> Arg {
        Arg::from(v.clone())
    }
}

impl From<&Value> for Arg {
    fn from(v: &Value) -> Arg {
        Arg::from(v.clone())
    }
}

/// One statement and its binds. Built from `&'static str` fragments and bound values
/// only, so no caller-supplied text can ever become SQL.
///
/// Placeholders are either written by hand (`Q::new("… WHERE id = $1").bind(id)`) or
/// numbered by the builder (`push_bind`, `push_list`, `push_rows`), which takes the
/// next number after the binds so far; write the hand-numbered part first.
#[derive(Debug, Clone)]
pub(crate) struct Q {
    sql: String,
    args: Vec<Arg>,
}

impl Q {
    /// A statement (or the start of one).
    pub(crate) fn new(sql: &'static str) -> Q {
        Q {
            sql: sql.to_owned(),
            args: Vec::new(),
        }
    }

    /// Binds the next hand-numbered placeholder.
    pub(crate) fn bind(mut self, v: impl Into<Arg>) -> Q {
        self.args.push(v.into());
        self
    }

    /// Appends SQL text.
    pub(crate) fn push(mut self, sql: &'static str) -> Q {
        self.sql.push_str(sql);
        self
    }

    /// Appends a placeholder numbered after the binds so far, and binds it.
    pub(crate) fn push_bind(mut self, v: impl Into<Arg>) -> Q {
        self.args.push(v.into());
        self.sql.push_str(&format!("${}", self.args.len()));
        self
    }

    /// Appends `$n, $n+1, …`, one placeholder per value (for `IN (…)`).
    pub(crate) fn push_list<T: Into<Arg>>(mut self, values: impl IntoIterator<Item = T>) -> Q {
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                self.sql.push_str(", ");
            }
            self = self.push_bind(v);
        }
        self
    }

    /// Appends `($n, …), ($m, …)`, one parenthesised group per row (for multi-row
    /// `VALUES`).
    pub(crate) fn push_rows<R: IntoIterator<Item = Arg>>(
        mut self,
        rows: impl IntoIterator<Item = R>,
    ) -> Q {
        for (i, row) in rows.into_iter().enumerate() {
            self.sql.push_str(if i > 0 { ", (" } else { "(" });
            self = self.push_list(row);
            self.sql.push(')');
        }
        self
    }
}

/// Several rows of a multi-row statement per chunk: well under both backends' limits
/// on the number of placeholders (SQLite 32,766; PostgreSQL 65,535).
pub(crate) const ROWS_PER_STATEMENT: usize = 1_000;

/// A result row, read with typed getters whatever the backend.
pub(crate) enum Row {
    Sqlite(SqliteRow),
    Postgres(PgRow),
}

impl Row {
    /// The named column as `T` (`String`, `Option<Uuid>`, `DateTime<Utc>`, `Value` …).
    pub(crate) fn get<T: Column>(&self, column: &str) -> StoreResult<T> {
        Ok(T::read(self, column)?)
    }
}

/// A Rust type a column can be read as.
pub(crate) trait Column: Sized {
    /// Reads the named column of a row.
    fn read(row: &Row, column: &str) -> Result<Self, sqlx::Error>;
}

/// Reads a column that both backends decode to the same Rust type.
fn read_alike<T>(row: &Row, column: &str) -> Result<T, sqlx::Error>
where
    T: for<'r> Decode<'r, Sqlite> + Type<Sqlite> + for<'r> Decode<'r, Postgres> + Type<Postgres>,
{
    match row {
        Row::Sqlite(r) => r.try_get(column),
        Row::Postgres(r) => r.try_get(column),
    }
}

macro_rules! column_alike {
    ($($t:ty),* $(,)?) => {$(
        impl Column for $t {
            fn read(row: &Row, column: &str) -> Result<Self, sqlx::Error> {
                read_alike(row, column)
            }
        }
    )*};
}

// SQLite's sqlx decoder for `DateTime<Utc>` reads the RFC 3339 text the store writes.
column_alike!(
    String,
    Option<String>,
    i16,
    Option<i16>,
    i32,
    Option<i32>,
    i64,
    Option<i64>,
    bool,
    NaiveDate,
    Option<NaiveDate>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    Vec<u8>,
    Option<Vec<u8>>,
);

impl Column for Option<Uuid> {
    fn read(row: &Row, column: &str) -> Result<Self, sqlx::Error> {
        match row {
            Row::Sqlite(r) => Ok(r
                .try_get::<Option<uuid::fmt::Hyphenated>, _>(column)?
                .map(Uuid::from)),
            Row::Postgres(r) => r.try_get(column),
        }
    }
}

impl Column for Uuid {
    fn read(row: &Row, column: &str) -> Result<Self, sqlx::Error> {
        Option::<Uuid>::read(row, column)?.ok_or_else(|| null_in(column))
    }
}

impl Column for Option<Value> {
    fn read(row: &Row, column: &str) -> Result<Self, sqlx::Error> {
        Ok(read_alike::<Option<Json<Value>>>(row, column)?.map(|j| j.0))
    }
}

impl Column for Value {
    fn read(row: &Row, column: &str) -> Result<Self, sqlx::Error> {
        Option::<Value>::read(row, column)?.ok_or_else(|| null_in(column))
    }
}

fn null_in(column: &str) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: "unexpected NULL".into(),
    }
}

/// The timestamp text SQLite stores: always six fraction digits, so text order is time
/// order.
pub(crate) fn sqlite_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

type SqlxQuery<DB> = sqlx::query::Query<'static, DB, <DB as Database>::Arguments>;

/// What the one query runner needs to know of a backend: how the values that differ
/// are bound, and how its rows and results are read.
trait Backend: Database {
    fn bind_alike(q: SqlxQuery<Self>, v: Alike) -> SqlxQuery<Self>;
    fn bind_id(q: SqlxQuery<Self>, v: Option<Uuid>) -> SqlxQuery<Self>;
    fn bind_time(q: SqlxQuery<Self>, v: Option<DateTime<Utc>>) -> SqlxQuery<Self>;
    fn wrap(row: Self::Row) -> Row;
    fn affected(r: &Self::QueryResult) -> u64;
}

/// Binds a value both backends encode the same way.
fn bind_alike<DB: Database>(q: SqlxQuery<DB>, v: Alike) -> SqlxQuery<DB>
where
    for<'e> Option<String>: Encode<'e, DB> + Type<DB>,
    for<'e> Option<i16>: Encode<'e, DB> + Type<DB>,
    for<'e> Option<i32>: Encode<'e, DB> + Type<DB>,
    for<'e> Option<i64>: Encode<'e, DB> + Type<DB>,
    for<'e> Option<bool>: Encode<'e, DB> + Type<DB>,
    for<'e> Option<NaiveDate>: Encode<'e, DB> + Type<DB>,
    for<'e> Option<Json<Value>>: Encode<'e, DB> + Type<DB>,
    for<'e> Option<Vec<u8>>: Encode<'e, DB> + Type<DB>,
{
    match v {
        Alike::Text(v) => q.bind(v),
        Alike::I16(v) => q.bind(v),
        Alike::I32(v) => q.bind(v),
        Alike::I64(v) => q.bind(v),
        Alike::Bool(v) => q.bind(v),
        Alike::Date(v) => q.bind(v),
        Alike::Json(v) => q.bind(v),
        Alike::Bytes(v) => q.bind(v),
    }
}

impl Backend for Sqlite {
    fn bind_alike(q: SqlxQuery<Self>, v: Alike) -> SqlxQuery<Self> {
        bind_alike(q, v)
    }
    fn bind_id(q: SqlxQuery<Self>, v: Option<Uuid>) -> SqlxQuery<Self> {
        q.bind(v.map(Uuid::hyphenated))
    }
    fn bind_time(q: SqlxQuery<Self>, v: Option<DateTime<Utc>>) -> SqlxQuery<Self> {
        q.bind(v.map(sqlite_time))
    }
    fn wrap(row: SqliteRow) -> Row {
        Row::Sqlite(row)
    }
    fn affected(r: &Self::QueryResult) -> u64 {
        r.rows_affected()
    }
}

impl Backend for Postgres {
    fn bind_alike(q: SqlxQuery<Self>, v: Alike) -> SqlxQuery<Self> {
        bind_alike(q, v)
    }
    fn bind_id(q: SqlxQuery<Self>, v: Option<Uuid>) -> SqlxQuery<Self> {
        q.bind(v)
    }
    fn bind_time(q: SqlxQuery<Self>, v: Option<DateTime<Utc>>) -> SqlxQuery<Self> {
        q.bind(v)
    }
    fn wrap(row: PgRow) -> Row {
        Row::Postgres(row)
    }
    fn affected(r: &Self::QueryResult) -> u64 {
        r.rows_affected()
    }
}

/// What a caller wants back from a statement.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Want {
    Affected,
    All,
    Optional,
}

/// What a statement gave back: the rows affected, or the rows.
#[derive(Default)]
pub(crate) struct Done {
    affected: u64,
    rows: Vec<Row>,
}

/// Runs one statement on a pool or a connection of backend `DB`.
async fn run<'c, DB, E>(e: E, q: Q, want: Want) -> StoreResult<Done>
where
    DB: Backend,
    DB::Arguments: IntoArguments<DB>,
    E: Executor<'c, Database = DB>,
{
    let query = q
        .args
        .into_iter()
        .fold(sqlx::query(AssertSqlSafe(q.sql)), |x, a| match a {
            Arg::Alike(v) => DB::bind_alike(x, v),
            Arg::Id(v) => DB::bind_id(x, v),
            Arg::Time(v) => DB::bind_time(x, v),
        });
    let rows = |rows: Vec<DB::Row>| rows.into_iter().map(DB::wrap).collect();
    Ok(match want {
        Want::Affected => Done {
            affected: DB::affected(&query.execute(e).await?),
            rows: Vec::new(),
        },
        Want::All => Done {
            affected: 0,
            rows: rows(query.fetch_all(e).await?),
        },
        Want::Optional => Done {
            affected: 0,
            rows: rows(query.fetch_optional(e).await?.into_iter().collect()),
        },
    })
}

/// Something a [`Q`] runs on: the pool (`&Db`) or an open transaction (`&mut Tx`).
pub(crate) trait Exec: Sized + Send {
    /// Runs the statement.
    fn run(self, q: Q, want: Want) -> impl Future<Output = StoreResult<Done>> + Send;

    /// Runs a statement; answers how many rows it changed.
    fn execute(self, q: Q) -> impl Future<Output = StoreResult<u64>> + Send {
        async move { Ok(self.run(q, Want::Affected).await?.affected) }
    }

    /// Every row of a query.
    fn fetch_all(self, q: Q) -> impl Future<Output = StoreResult<Vec<Row>>> + Send {
        async move { Ok(self.run(q, Want::All).await?.rows) }
    }

    /// The first row of a query, if any.
    fn fetch_optional(self, q: Q) -> impl Future<Output = StoreResult<Option<Row>>> + Send {
        async move { Ok(self.run(q, Want::Optional).await?.rows.into_iter().next()) }
    }

    /// Every row of a query, each read by `read` (a row type's reader).
    fn fetch_all_with<T: Send>(
        self,
        q: Q,
        read: impl Fn(&Row) -> StoreResult<T> + Send,
    ) -> impl Future<Output = StoreResult<Vec<T>>> + Send {
        async move { self.fetch_all(q).await?.iter().map(read).collect() }
    }

    /// The first row of a query, if any, read by `read`.
    fn fetch_optional_with<T: Send>(
        self,
        q: Q,
        read: impl Fn(&Row) -> StoreResult<T> + Send,
    ) -> impl Future<Output = StoreResult<Option<T>>> + Send {
        async move { self.fetch_optional(q).await?.as_ref().map(read).transpose() }
    }

    /// The first row of a query that always answers one (`COUNT(*)`, `RETURNING`).
    fn fetch_one(self, q: Q) -> impl Future<Output = StoreResult<Row>> + Send {
        async move {
            self.fetch_optional(q)
                .await?
                .ok_or(StoreError::Database(sqlx::Error::RowNotFound))
        }
    }
}

/// The table a claim leases rows of, by the alias its subquery must give it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Claimed {
    /// `outbox o`: deliveries.
    Outbox,
    /// `notifications n`: mail to send.
    Notices,
}

/// The connection pool of one backend.
#[derive(Debug, Clone)]
pub(crate) enum Db {
    /// Readers on the pool; every write through the one writer (see `sqlite_writer`).
    Sqlite(SqlitePool, Arc<Writer>),
    Postgres(PgPool),
}

impl Exec for &Db {
    async fn run(self, q: Q, want: Want) -> StoreResult<Done> {
        match self {
            Db::Sqlite(_, w) if may_write(&q.sql) => {
                let mut t = w.begin().await?;
                match run(t.conn()?, q, want).await {
                    Ok(done) => {
                        t.commit().await?;
                        Ok(done)
                    }
                    Err(e) => {
                        t.rollback().await?;
                        Err(e)
                    }
                }
            }
            Db::Sqlite(p, _) => run(p, q, want).await,
            Db::Postgres(p) => run(p, q, want).await,
        }
    }
}

/// An open transaction; dropped without `commit`, it rolls back.
pub(crate) enum Tx {
    /// A logical transaction on SQLite's writer (a savepoint in a group commit).
    Sqlite(WriterTx),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

impl Exec for &mut Tx {
    async fn run(self, q: Q, want: Want) -> StoreResult<Done> {
        match self {
            Tx::Sqlite(t) => run(t.conn()?, q, want).await,
            Tx::Postgres(t) => run(&mut **t, q, want).await,
        }
    }
}

/// What a transaction can queue behind on PostgreSQL, as the class of a two-key
/// advisory lock (each class its own key space).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Lock {
    /// One subject's audit chain: appends to it take turns.
    Chain,
    /// The signing key ring: the first key is stored once.
    Keyring,
}

impl Lock {
    fn class(self) -> i32 {
        match self {
            Lock::Chain => 0x6F77_6461,   // "owda"
            Lock::Keyring => 0x6F77_736B, // "owsk"
        }
    }
}

impl Tx {
    /// Makes the transaction durable.
    pub(crate) async fn commit(self) -> StoreResult<()> {
        match self {
            Tx::Sqlite(t) => t.commit().await?,
            Tx::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }

    /// Undoes the transaction now (rather than when it is dropped).
    pub(crate) async fn rollback(self) -> StoreResult<()> {
        match self {
            Tx::Sqlite(t) => t.rollback().await?,
            Tx::Postgres(t) => t.rollback().await?,
        }
        Ok(())
    }

    /// Queues this transaction behind any other holding the same lock until it ends,
    /// so that, say, two appends to one audit chain do not both read the same last
    /// record. PostgreSQL takes a transaction-scoped advisory lock on (class, the first
    /// four bytes of SHA-256 of `key`); keys sharing those merely queue together. On
    /// SQLite the writer's database lock, taken by `begin_write` or by a write earlier
    /// in the transaction, already serialises writers.
    pub(crate) async fn lock(&mut self, lock: Lock, key: &str) -> StoreResult<()> {
        if let Tx::Postgres(_) = self {
            use sha2::Digest;
            let d = sha2::Sha256::digest(key.as_bytes());
            let key = i32::from_be_bytes([d[0], d[1], d[2], d[3]]);
            self.execute(
                Q::new("SELECT pg_advisory_xact_lock($1, $2)")
                    .bind(lock.class())
                    .bind(key),
            )
            .await?;
        }
        Ok(())
    }
}

impl Db {
    /// Opens the database the URL names. SQLite: the file is created with its directory,
    /// WAL journal, `synchronous=FULL` (a submission acknowledged is a submission kept)
    /// and a busy timeout so writers queue. PostgreSQL: fails when the server does not
    /// answer within a few seconds.
    /// `acquire_timeout` bounds the wait for a PostgreSQL connection, so a request fails
    /// fast (and is answered 503) when the server is down.
    pub(crate) async fn connect(
        url: &str,
        max_connections: u32,
        acquire_timeout: Duration,
    ) -> StoreResult<Db> {
        if !url.starts_with("sqlite:") {
            let options = PgConnectOptions::from_str(url)?.application_name("onewindow");
            // No ping before each checkout (a round trip per statement): a broken
            // connection fails its statement, is answered 503 and is not reused (sqlx tests
            // a connection when it comes back), and `/readyz` pings on its own.
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .test_before_acquire(false)
                .acquire_timeout(acquire_timeout)
                .connect_with(options)
                .await?;
            return Ok(Db::Postgres(pool));
        }
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
        // The writer's connection first: it creates the file and sets WAL mode.
        let writer = Writer::start(options.clone().connect().await?);
        // Readers: each keeps at most 1 MiB of page cache (SQLite's default is 2 MiB).
        let readers = options.pragma("cache_size", "-1024");
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections.clamp(1, 16))
            .test_before_acquire(false)
            .connect_with(readers)
            .await?;
        Ok(Db::Sqlite(pool, writer))
    }

    /// `"sqlite"` or `"postgres"`.
    pub(crate) fn backend(&self) -> &'static str {
        match self {
            Db::Sqlite(..) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// Applies the backend's own embedded migrations; answers how many were new.
    pub(crate) async fn migrate(&self) -> StoreResult<usize> {
        let before = self.applied_migrations().await;
        match self {
            Db::Sqlite(p, _) => sqlx::migrate!("migrations/sqlite").run(p).await?,
            Db::Postgres(p) => sqlx::migrate!("migrations/postgres").run(p).await?,
        }
        Ok(self.applied_migrations().await.saturating_sub(before))
    }

    async fn applied_migrations(&self) -> usize {
        let q = Q::new("SELECT COUNT(*) AS n FROM _sqlx_migrations WHERE success");
        match self.fetch_one(q).await.and_then(|r| r.get::<i64>("n")) {
            Ok(n) => n as usize,
            // No table yet: nothing applied.
            Err(_) => 0,
        }
    }

    /// A transaction that takes the write lock only when it first writes (the default
    /// on both backends).
    pub(crate) async fn begin(&self) -> StoreResult<Tx> {
        Ok(match self {
            Db::Sqlite(_, w) => Tx::Sqlite(w.begin().await?),
            Db::Postgres(p) => Tx::Postgres(p.begin().await?),
        })
    }

    /// A transaction that reads and then writes what it read. On SQLite it takes the
    /// write lock at once (`BEGIN IMMEDIATE`): a deferred transaction that read first
    /// could not upgrade after another writer committed, and would fail rather than
    /// wait. PostgreSQL's row locks need nothing special.
    pub(crate) async fn begin_write(&self) -> StoreResult<Tx> {
        Ok(match self {
            Db::Sqlite(_, w) => Tx::Sqlite(w.begin().await?),
            Db::Postgres(p) => Tx::Postgres(p.begin().await?),
        })
    }

    /// Appended to a claim's `SELECT … LIMIT n`: on PostgreSQL, lock the chosen rows
    /// and pass over those another instance holds, so concurrent workers never claim the
    /// same row. Only the claimed table's rows are locked (not, say, the department
    /// endpoint joined in, which every claim reads). SQLite has one writer at a time.
    pub(crate) fn skip_locked(&self, claimed: Claimed) -> &'static str {
        match (self, claimed) {
            (Db::Sqlite(..), _) => "",
            (Db::Postgres(_), Claimed::Outbox) => " FOR UPDATE OF o SKIP LOCKED",
            (Db::Postgres(_), Claimed::Notices) => " FOR UPDATE OF n SKIP LOCKED",
        }
    }

    /// The physical order of `case_materials` rows (alias `m`), which is the order a
    /// write inserted them in, for materials added by the same history entry.
    pub(crate) fn material_order(&self) -> &'static str {
        match self {
            Db::Sqlite(..) => "m.rowid",
            Db::Postgres(_) => "m.ctid",
        }
    }

    /// The select-list items of a case read in one statement (the case aliased `c`):
    /// `events_json`, its history oldest first, and `materials_json`, its materials with
    /// their files in the order they were added, each a JSON array.
    pub(crate) fn case_aggregates(&self) -> &'static str {
        match self {
            Db::Postgres(_) => {
                "(SELECT COALESCE(jsonb_agg(to_jsonb(e) - 'case_id' ORDER BY e.seq), '[]'::jsonb) \
                   FROM case_events e WHERE e.case_id = c.id) AS events_json, \
                 (SELECT COALESCE(jsonb_agg(jsonb_build_object('material_id', m.material_id, \
                   'upload_id', m.upload_id, 'substituted', m.substituted, 'source', m.source, \
                   'evidence', m.evidence, 'added_seq', m.added_seq, 'file_name', u.file_name, \
                   'file_type', u.file_type, 'size', u.size, 'sha256', u.sha256) \
                   ORDER BY m.added_seq, m.ctid), '[]'::jsonb) \
                   FROM case_materials m LEFT JOIN uploads u ON u.id = m.upload_id \
                   WHERE m.case_id = c.id) AS materials_json"
            }
            // SQLite aggregates rows in the order its subquery gives them.
            Db::Sqlite(..) => {
                "(SELECT json_group_array(json_object('seq', seq, 'at', at, 'actor', actor, \
                   'actor_id', actor_id, 'actor_name', actor_name, 'action', action, \
                   'from_status', from_status, 'to_status', to_status, 'note', note, \
                   'attachments', json(attachments))) \
                   FROM (SELECT * FROM case_events WHERE case_id = c.id ORDER BY seq)) AS events_json, \
                 (SELECT json_group_array(json_object('material_id', material_id, \
                   'upload_id', upload_id, 'substituted', substituted, 'source', source, \
                   'evidence', json(evidence), 'added_seq', added_seq, 'file_name', file_name, \
                   'file_type', file_type, 'size', size, 'sha256', sha256)) \
                   FROM (SELECT m.*, u.file_name, u.file_type, u.size, u.sha256 \
                     FROM case_materials m LEFT JOIN uploads u ON u.id = m.upload_id \
                     WHERE m.case_id = c.id ORDER BY m.added_seq, m.rowid)) AS materials_json"
            }
        }
    }

    /// Closes the pool, waiting for connections in use.
    pub(crate) async fn close(&self) {
        match self {
            Db::Sqlite(p, w) => {
                w.close().await;
                p.close().await;
            }
            Db::Postgres(p) => p.close().await,
        }
    }
}

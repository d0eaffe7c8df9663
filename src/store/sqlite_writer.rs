//! SQLite's one writer, with group commit.
//!
//! SQLite lets one connection write at a time, and with `synchronous=FULL` every commit
//! waits for the disk (about a millisecond here). Writers that each open their own
//! transaction on their own connection therefore collide on the write lock, wait in the
//! busy handler, and pay one disk flush each. Here every write runs on one connection
//! instead, inside one physical transaction (`BEGIN IMMEDIATE`) that many logical
//! transactions share:
//!
//! - a logical transaction ([`WriterTx`]) takes the writer (a fair async mutex, so
//!   writers queue in order instead of retrying), opens the physical transaction if none
//!   is open, and runs inside a savepoint;
//! - its `commit` releases the savepoint, hands the writer on, and waits until the
//!   physical transaction that holds its work is committed: durability is not traded, a
//!   commit that returns is on disk;
//! - its `rollback` (or being dropped unfinished) undoes only its savepoint;
//! - the flusher task commits the physical transaction whenever it gets the writer, so
//!   everything that queued during one disk flush is committed by the next one: the
//!   busier the gateway, the more logical transactions share a flush.
//!
//! Reads run on the reader pool and see committed data only. A statement run directly
//! on the database (not in a transaction) that may write takes the writer as a logical
//! transaction of its own.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use sqlx::{Connection, Executor, SqliteConnection};
use tokio::sync::{Mutex, Notify, OwnedMutexGuard, watch};

use super::{StoreError, StoreResult};

/// How long a logical transaction waits for the writer before giving up, like SQLite's
/// own busy timeout (a wait this long means something holds the writer far too long).
const WRITER_WAIT: Duration = Duration::from_secs(5);

/// The savepoint of the logical transaction in progress (one at a time).
const SAVEPOINT: &str = "SAVEPOINT ow_tx";
const RELEASE: &str = "RELEASE ow_tx";
const ROLLBACK_TO: &str = "ROLLBACK TO ow_tx";

/// The writer connection and where its physical transaction stands.
pub(crate) struct WriterState {
    /// None once the store has closed.
    conn: Option<SqliteConnection>,
    /// Whether a physical transaction is open.
    open: bool,
    /// The number of the physical transaction open (or last opened).
    batch: u64,
    /// Logical transactions released into the open physical transaction.
    released: u64,
    /// A logical transaction was dropped inside its savepoint: undo it first.
    abandoned: bool,
}

impl WriterState {
    /// Undoes an abandoned savepoint, then makes sure a physical transaction is open.
    async fn ready(&mut self) -> StoreResult<()> {
        self.undo_abandoned().await?;
        if !self.open {
            self.conn()?.execute("BEGIN IMMEDIATE").await?;
            self.open = true;
            self.batch += 1;
            self.released = 0;
        }
        Ok(())
    }

    async fn undo_abandoned(&mut self) -> StoreResult<()> {
        if self.abandoned {
            self.abandoned = false;
            self.conn()?.execute(ROLLBACK_TO).await?;
            self.conn()?.execute(RELEASE).await?;
        }
        Ok(())
    }

    fn conn(&mut self) -> StoreResult<&mut SqliteConnection> {
        self.conn
            .as_mut()
            .ok_or_else(|| StoreError::Database(sqlx::Error::PoolClosed))
    }
}

/// The writer shared by a store's handles.
pub(crate) struct Writer {
    state: Arc<Mutex<WriterState>>,
    /// Wakes the flusher when a logical transaction ends.
    wake: Notify,
    /// The last physical transaction that ended (committed or failed).
    done: watch::Sender<u64>,
    /// Physical transactions whose commit failed (the latest few hundred).
    failed: StdMutex<BTreeSet<u64>>,
    /// Set when the store closes: the flusher commits what is left and stops.
    closed: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Writer")
    }
}

impl Writer {
    /// Starts the writer on `conn` (a connection of its own) and its flusher task.
    pub(crate) fn start(conn: SqliteConnection) -> Arc<Writer> {
        let writer = Arc::new(Writer {
            state: Arc::new(Mutex::new(WriterState {
                conn: Some(conn),
                open: false,
                batch: 0,
                released: 0,
                abandoned: false,
            })),
            wake: Notify::new(),
            done: watch::channel(0).0,
            failed: StdMutex::new(BTreeSet::new()),
            closed: std::sync::atomic::AtomicBool::new(false),
        });
        tokio::spawn(flusher(Arc::clone(&writer)));
        writer
    }

    /// A logical transaction: waits for the writer, then opens a savepoint.
    pub(crate) async fn begin(self: &Arc<Writer>) -> StoreResult<WriterTx> {
        let mut guard = tokio::time::timeout(WRITER_WAIT, Arc::clone(&self.state).lock_owned())
            .await
            .map_err(|_| {
                StoreError::Database(sqlx::Error::Protocol(
                    "the SQLite writer stayed busy too long".into(),
                ))
            })?;
        if let Err(e) = guard.ready().await {
            drop(guard);
            self.wake.notify_one();
            return Err(e);
        }
        if let Err(e) = async {
            guard
                .conn()?
                .execute(SAVEPOINT)
                .await
                .map_err(StoreError::from)
        }
        .await
        {
            drop(guard);
            self.wake.notify_one();
            return Err(e);
        }
        Ok(WriterTx {
            guard: Some(guard),
            writer: Arc::clone(self),
        })
    }

    /// Ends the writer: commits what is open and stops the flusher.
    pub(crate) async fn close(&self) {
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        self.wake.notify_one();
        let mut s = self.state.lock().await;
        let _ = s.undo_abandoned().await;
        if s.open {
            s.open = false;
            if let Ok(c) = s.conn() {
                let _ = c.execute("COMMIT").await;
            }
        }
        if let Some(c) = s.conn.take() {
            let _ = c.close().await;
        }
    }

    /// Waits until physical transaction `batch` has ended; its outcome.
    async fn wait_for(&self, batch: u64) -> StoreResult<()> {
        let mut rx = self.done.subscribe();
        rx.wait_for(|done| *done >= batch).await.map_err(|_| {
            StoreError::Database(sqlx::Error::Protocol("the SQLite writer stopped".into()))
        })?;
        if self.failed.lock().expect("poisoned").contains(&batch) {
            return Err(StoreError::Database(sqlx::Error::Protocol(
                "the commit of this write failed".into(),
            )));
        }
        Ok(())
    }
}

/// Commits the physical transaction whenever it gets the writer and one is open, so it
/// never stays open while the writer is idle (another process may want to write).
async fn flusher(writer: Arc<Writer>) {
    loop {
        writer.wake.notified().await;
        let mut s = writer.state.lock().await;
        if let Err(e) = s.undo_abandoned().await {
            tracing::error!(error = %e, "SQLite writer: undoing an abandoned write failed");
        }
        if s.open {
            s.open = false;
            let batch = s.batch;
            let committed = match s.conn() {
                Ok(c) => c
                    .execute("COMMIT")
                    .await
                    .map(|_| ())
                    .map_err(StoreError::from),
                Err(e) => Err(e),
            };
            if let Err(e) = committed {
                tracing::error!(error = %e, "SQLite writer: a group commit failed");
                if let Ok(c) = s.conn() {
                    let _ = c.execute("ROLLBACK").await;
                }
                let mut failed = writer.failed.lock().expect("poisoned");
                failed.insert(batch);
                while failed.len() > 512 {
                    failed.pop_first();
                }
            }
            writer.done.send_replace(batch);
        }
        drop(s);
        if writer.closed.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
    }
}

/// A logical transaction on the writer. Dropped unfinished, it is undone.
pub(crate) struct WriterTx {
    guard: Option<OwnedMutexGuard<WriterState>>,
    writer: Arc<Writer>,
}

impl WriterTx {
    /// The writer's connection.
    pub(crate) fn conn(&mut self) -> StoreResult<&mut SqliteConnection> {
        self.guard
            .as_mut()
            .expect("an open logical transaction")
            .conn()
    }

    /// Releases the savepoint and waits until the group commit that holds it is on disk.
    pub(crate) async fn commit(mut self) -> StoreResult<()> {
        let mut guard = self.guard.take().expect("an open logical transaction");
        let released = async {
            guard
                .conn()?
                .execute(RELEASE)
                .await
                .map_err(StoreError::from)
        }
        .await;
        if let Err(e) = released {
            guard.abandoned = true;
            drop(guard);
            self.writer.wake.notify_one();
            return Err(e);
        }
        guard.released += 1;
        let batch = guard.batch;
        drop(guard);
        self.writer.wake.notify_one();
        self.writer.wait_for(batch).await
    }

    /// Undoes the savepoint now.
    pub(crate) async fn rollback(mut self) -> StoreResult<()> {
        let mut guard = self.guard.take().expect("an open logical transaction");
        let undone = async {
            guard.conn()?.execute(ROLLBACK_TO).await?;
            guard.conn()?.execute(RELEASE).await?;
            StoreResult::Ok(())
        }
        .await;
        if undone.is_err() {
            guard.abandoned = true;
        }
        drop(guard);
        self.writer.wake.notify_one();
        undone
    }
}

impl Drop for WriterTx {
    fn drop(&mut self) {
        if let Some(mut guard) = self.guard.take() {
            guard.abandoned = true;
            drop(guard);
            self.writer.wake.notify_one();
        }
    }
}

/// Whether a statement run outside a transaction may write (and so must go through the
/// writer): anything but a plain `SELECT`.
pub(crate) fn may_write(sql: &str) -> bool {
    let head = sql.trim_start();
    !(head.len() >= 6 && head[..6].eq_ignore_ascii_case("select"))
}

#[cfg(test)]
mod tests {
    use super::may_write;
    use crate::store::db::{Db, Exec, Q, Tx};

    async fn db(dir: &tempfile::TempDir) -> Db {
        let url = format!("sqlite://{}", dir.path().join("w.db").display());
        let db = Db::connect(&url, 4, std::time::Duration::from_secs(2))
            .await
            .expect("open");
        db.execute(Q::new("CREATE TABLE t (n INTEGER PRIMARY KEY)"))
            .await
            .expect("create");
        db
    }

    /// A logical transaction that has inserted `n`.
    async fn inserted(db: &Db, n: i64) -> Tx {
        let mut tx = db.begin().await.expect("begin");
        tx.execute(Q::new("INSERT INTO t (n) VALUES ($1)").bind(n))
            .await
            .expect("insert");
        tx
    }

    async fn count(db: &Db) -> i64 {
        db.fetch_one(Q::new("SELECT COUNT(*) AS n FROM t"))
            .await
            .expect("count")
            .get::<i64>("n")
            .expect("n")
    }

    #[tokio::test]
    async fn concurrent_writes_all_land_and_share_commits() {
        let dir = tempfile::tempdir().expect("dir");
        let db = db(&dir).await;
        let mut tasks = Vec::new();
        for n in 0..200_i64 {
            let db = db.clone();
            tasks.push(tokio::spawn(async move {
                inserted(&db, n).await.commit().await.expect("commit");
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
        // Every commit that returned is visible to a reader on another connection.
        assert_eq!(count(&db).await, 200);
        db.close().await;
    }

    #[tokio::test]
    async fn a_rolled_back_failed_or_dropped_write_leaves_nothing_and_spares_the_others() {
        let dir = tempfile::tempdir().expect("dir");
        let db = db(&dir).await;
        // Rolled back.
        let tx = inserted(&db, 1).await;
        tx.rollback().await.expect("rollback");
        // Dropped unfinished (a cancelled request).
        let tx = inserted(&db, 2).await;
        drop(tx);
        // A statement that fails inside a transaction: the caller rolls back.
        let mut tx = inserted(&db, 3).await;
        assert!(
            tx.execute(Q::new("INSERT INTO t (n) VALUES (3)"))
                .await
                .is_err()
        );
        tx.rollback().await.expect("rollback");
        // A good one after all that.
        let tx = inserted(&db, 4).await;
        tx.commit().await.expect("commit");
        // A write outside a transaction goes through the writer as well.
        db.execute(Q::new("INSERT INTO t (n) VALUES (5)"))
            .await
            .expect("direct insert");
        let rows = db
            .fetch_all(Q::new("SELECT n FROM t ORDER BY n"))
            .await
            .expect("rows");
        let ns: Vec<i64> = rows.iter().map(|r| r.get("n").expect("n")).collect();
        assert_eq!(ns, vec![4, 5]);
        db.close().await;
    }

    #[tokio::test]
    async fn an_idle_writer_leaves_the_file_free_for_another_process() {
        let dir = tempfile::tempdir().expect("dir");
        let db = db(&dir).await;
        let tx = inserted(&db, 1).await;
        tx.commit().await.expect("commit");
        // Another connection (another process: the CLI while the gateway runs) can take
        // the write lock at once: the physical transaction is not left open.
        use sqlx::{ConnectOptions, Connection, Executor};
        let mut other = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(dir.path().join("w.db"))
            .busy_timeout(std::time::Duration::from_millis(200))
            .connect()
            .await
            .expect("other");
        other
            .execute("BEGIN IMMEDIATE")
            .await
            .expect("the write lock is free");
        other
            .execute("INSERT INTO t (n) VALUES (9)")
            .await
            .expect("insert");
        other.execute("COMMIT").await.expect("commit");
        other.close().await.expect("close");
        assert_eq!(count(&db).await, 2);
        db.close().await;
    }

    #[test]
    fn only_plain_selects_skip_the_writer() {
        assert!(!may_write("SELECT 1"));
        assert!(!may_write("  select * FROM cases"));
        assert!(may_write("INSERT INTO t VALUES (1)"));
        assert!(may_write("UPDATE t SET a = 1 RETURNING a"));
        assert!(may_write("WITH x AS (DELETE FROM t RETURNING 1) SELECT 1"));
        assert!(may_write("sel"));
    }
}

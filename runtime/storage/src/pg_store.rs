//! [`Storage`] on PostgreSQL, shared by every replica: ordered byte keys in
//! one table, one namespace per store (memory, journal, ...), ids from a
//! sequence. A write is durable when its transaction commits.
//!
//! The seam is synchronous (sled is); queries run on a small runtime of
//! this store's own, so callers may be on any thread, async or not, and
//! wait like they wait for sled's disk.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Timeouts};
use tokio_postgres::NoTls;

use tokio::sync::broadcast;
use tokio_postgres::AsyncMessage;

use super::{
    ScanStart, ScanVisitor, Storage, StorageError, SyncTicket, Write, WriteBatch, prefix_end,
};
use crate::changes::{CHANGE_BACKLOG, Changes, Published};

/// The PostgreSQL channel changes are published on.
const CHANGE_CHANNEL: &str = "corral_changes";

/// How long the change listener waits before reconnecting.
const LISTEN_RETRY: Duration = Duration::from_secs(1);

/// How long a request waits for a connection (or to open one) before it
/// fails with [`StorageError::Database`]: a database that is down answers
/// fast instead of stalling callers.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long [`Storage::check`] waits for the database.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// Entries fetched per round trip while scanning.
const SCAN_PAGE: i64 = 256;

/// Versioned schema changes, applied in order at start under an advisory
/// lock (so replicas starting together apply each once).
const MIGRATIONS: &[(i32, &str)] = &[(
    1,
    "CREATE TABLE corral_kv (
         namespace text NOT NULL,
         key bytea NOT NULL,
         value bytea NOT NULL,
         PRIMARY KEY (namespace, key)
     );
     CREATE SEQUENCE corral_ids;",
)];

/// Advisory lock key serialising migrations across replicas.
const MIGRATION_LOCK: i64 = 0x636f_7272_616c;

/// PostgreSQL-backed storage for one namespace.
pub struct PgStorage {
    connection: Arc<Connection>,
    pool: Pool,
    namespace: String,
}

/// The runtime and pool every namespace of one database shares.
struct Connection {
    runtime: Option<tokio::runtime::Runtime>,
    /// How to open the change listener's own connection.
    config: tokio_postgres::Config,
    /// Tags this process's notifications, so it skips its own.
    origin: String,
    /// Delivers other processes' changes; the listener starts with the
    /// first subscriber.
    changes: std::sync::OnceLock<broadcast::Sender<Published>>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which an async caller's thread must not.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl std::fmt::Debug for PgStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStorage")
            .field("namespace", &self.namespace)
            .finish()
    }
}

fn database(
    what: &'static str,
) -> impl FnOnce(Box<dyn std::error::Error + Send + Sync>) -> StorageError {
    move |source| StorageError::Database {
        what,
        source: Arc::from(source),
    }
}

impl PgStorage {
    /// Connects to `url` (`postgres://user[:password]@host[:port]/db`),
    /// applies pending migrations and serves keys of `namespace`.
    pub fn connect(url: &str, namespace: &str) -> Result<Self, StorageError> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e: tokio_postgres::Error| database("parse the database URL")(Box::new(e)))?;
        config.connect_timeout(CONNECT_TIMEOUT);
        config.application_name("corral");
        // A peer that vanished without closing (a cut network) is noticed
        // within ~25 s, and no statement waits on one forever: callers
        // (a replica's heartbeat above all) get an error instead of a hang.
        config.keepalives_idle(Duration::from_secs(10));
        config.keepalives_interval(Duration::from_secs(5));
        config.keepalives_retries(3);
        config.tcp_user_timeout(Duration::from_secs(15));
        config.options("-c statement_timeout=30000");
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("corral-pg")
            .enable_all()
            .build()
            .map_err(|e| database("start the database runtime")(Box::new(e)))?;
        let pool = Pool::builder(manager)
            .max_size(16)
            .timeouts(Timeouts {
                wait: Some(CONNECT_TIMEOUT),
                create: Some(CONNECT_TIMEOUT),
                recycle: Some(CONNECT_TIMEOUT),
            })
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| database("build the connection pool")(Box::new(e)))?;
        let store = PgStorage {
            connection: Arc::new(Connection {
                runtime: Some(runtime),
                config,
                origin: format!("{}-{}", std::process::id(), unique_suffix()),
                changes: std::sync::OnceLock::new(),
            }),
            pool,
            namespace: namespace.to_string(),
        };
        let pool = store.pool.clone();
        store.run(async move { migrate(&pool).await })?;
        Ok(store)
    }

    /// Another namespace of the same database, on this store's pool (no
    /// new connections, no migration).
    pub fn namespace(&self, namespace: &str) -> PgStorage {
        PgStorage {
            connection: self.connection.clone(),
            pool: self.pool.clone(),
            namespace: namespace.to_string(),
        }
    }

    /// Runs `work` on this store's runtime and waits for it.
    fn run<T: Send + 'static>(
        &self,
        work: impl Future<Output = Result<T, StorageError>> + Send + 'static,
    ) -> Result<T, StorageError> {
        let Some(runtime) = &self.connection.runtime else {
            return Err(StorageError::Engine("the store is closed".into()));
        };
        let (done, result) = std::sync::mpsc::sync_channel(1);
        runtime.spawn(async move {
            let _ = done.send(work.await);
        });
        result
            .recv()
            .map_err(|_| StorageError::Engine("a database task ended without answering".into()))?
    }
}

/// Distinguishes processes with the same pid on different machines.
fn unique_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// Keeps a connection LISTENing on [`CHANGE_CHANNEL`] and hands other
/// processes' notifications to `sender`; reconnects while the database is
/// away, and announces a resync each time it (re)starts listening, since
/// changes made meanwhile were not delivered.
async fn listen_for_changes(
    config: tokio_postgres::Config,
    origin: String,
    sender: broadcast::Sender<Published>,
) {
    loop {
        if let Ok((client, mut connection)) = config.connect(NoTls).await {
            let (payloads, mut received) = tokio::sync::mpsc::unbounded_channel::<String>();
            let driver = tokio::spawn(async move {
                while let Some(Ok(message)) =
                    std::future::poll_fn(|cx| connection.poll_message(cx)).await
                {
                    if let AsyncMessage::Notification(n) = message
                        && payloads.send(n.payload().to_string()).is_err()
                    {
                        break;
                    }
                }
            });
            if client
                .batch_execute(&format!("LISTEN {CHANGE_CHANNEL}"))
                .await
                .is_ok()
            {
                let _ = sender.send(Published {
                    namespace: Arc::from(""),
                    topic: None,
                });
                while let Some(payload) = received.recv().await {
                    let mut parts = payload.splitn(3, '\t');
                    let (Some(from), Some(namespace), Some(topic)) =
                        (parts.next(), parts.next(), parts.next())
                    else {
                        continue;
                    };
                    if from != origin {
                        let _ = sender.send(Published {
                            namespace: Arc::from(namespace),
                            topic: Some(Arc::from(topic)),
                        });
                    }
                }
            }
            driver.abort();
        }
        tokio::time::sleep(LISTEN_RETRY).await;
    }
}

/// Applies `writes` in order within `tx`.
async fn apply_writes(
    tx: &deadpool_postgres::Transaction<'_>,
    namespace: &str,
    writes: &[Write],
) -> Result<(), StorageError> {
    let put = tx
        .prepare_cached(
            "INSERT INTO corral_kv (namespace, key, value) VALUES ($1, $2, $3)
             ON CONFLICT (namespace, key) DO UPDATE SET value = EXCLUDED.value",
        )
        .await
        .map_err(query_failed("prepare a write"))?;
    let delete = tx
        .prepare_cached("DELETE FROM corral_kv WHERE namespace = $1 AND key = $2")
        .await
        .map_err(query_failed("prepare a delete"))?;
    for write in writes {
        match write {
            Write::Put(key, value) => tx.execute(&put, &[&namespace, key, value]).await,
            Write::Delete(key) => tx.execute(&delete, &[&namespace, key]).await,
        }
        .map_err(query_failed("write a key"))?;
    }
    Ok(())
}

async fn client(pool: &Pool) -> Result<deadpool_postgres::Object, StorageError> {
    pool.get()
        .await
        .map_err(|e| database("connect to the database")(Box::new(e)))
}

fn query_failed(what: &'static str) -> impl FnOnce(tokio_postgres::Error) -> StorageError {
    move |e| database(what)(Box::new(e))
}

async fn migrate(pool: &Pool) -> Result<(), StorageError> {
    let mut client = client(pool).await?;
    let tx = client
        .transaction()
        .await
        .map_err(query_failed("begin a migration"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(query_failed("lock the schema"))?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS corral_migrations (
             version integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await
    .map_err(query_failed("create the migrations table"))?;
    let applied: i32 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM corral_migrations",
            &[],
        )
        .await
        .map_err(query_failed("read the schema version"))?
        .get(0);
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > applied) {
        tx.batch_execute(sql)
            .await
            .map_err(query_failed("apply a migration"))?;
        tx.execute(
            "INSERT INTO corral_migrations (version) VALUES ($1)",
            &[version],
        )
        .await
        .map_err(query_failed("record a migration"))?;
    }
    tx.commit()
        .await
        .map_err(query_failed("commit the migrations"))
}

/// One page of a scan: bounds and direction.
struct Page {
    lower: Vec<u8>,
    lower_inclusive: bool,
    upper: Option<Vec<u8>>,
    reverse: bool,
}

impl Page {
    fn sql(&self) -> String {
        let lower = if self.lower_inclusive { ">=" } else { ">" };
        let upper = if self.upper.is_some() {
            " AND key < $3"
        } else {
            ""
        };
        let order = if self.reverse { "DESC" } else { "ASC" };
        let limit = if self.upper.is_some() { "$4" } else { "$3" };
        format!(
            "SELECT key, value FROM corral_kv WHERE namespace = $1 AND key {lower} $2{upper} \
             ORDER BY key {order} LIMIT {limit}"
        )
    }
}

impl Storage for PgStorage {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        let pool = self.pool.clone();
        let namespace = self.namespace.clone();
        let key = key.to_vec();
        self.run(async move {
            let row = client(&pool)
                .await?
                .query_opt(
                    "SELECT value FROM corral_kv WHERE namespace = $1 AND key = $2",
                    &[&namespace, &key],
                )
                .await
                .map_err(query_failed("read a key"))?;
            Ok(row.map(|r| r.get::<_, Vec<u8>>(0)))
        })
    }

    fn scan(
        &self,
        prefix: &[u8],
        start: ScanStart<'_>,
        reverse: bool,
        visit: &mut ScanVisitor<'_>,
    ) -> Result<(), StorageError> {
        let end = prefix_end(prefix);
        let mut page = match (start, reverse) {
            (ScanStart::Beginning, _) => Page {
                lower: prefix.to_vec(),
                lower_inclusive: true,
                upper: end,
                reverse,
            },
            (ScanStart::After(key), false) => Page {
                lower: key.to_vec(),
                lower_inclusive: false,
                upper: end,
                reverse,
            },
            (ScanStart::After(key), true) => Page {
                lower: prefix.to_vec(),
                lower_inclusive: true,
                upper: Some(key.to_vec()),
                reverse,
            },
        };
        loop {
            let pool = self.pool.clone();
            let namespace = self.namespace.clone();
            let sql = page.sql();
            let (lower, upper) = (page.lower.clone(), page.upper.clone());
            let rows: Vec<(Vec<u8>, Vec<u8>)> = self.run(async move {
                let client = client(&pool).await?;
                let rows = match &upper {
                    Some(upper) => {
                        client
                            .query(&sql, &[&namespace, &lower, upper, &SCAN_PAGE])
                            .await
                    }
                    None => client.query(&sql, &[&namespace, &lower, &SCAN_PAGE]).await,
                }
                .map_err(query_failed("scan keys"))?;
                Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
            })?;
            let full = rows.len() as i64 == SCAN_PAGE;
            let Some(last) = rows.last().map(|(k, _)| k.clone()) else {
                return Ok(());
            };
            for (key, value) in &rows {
                if visit(key, value).is_break() {
                    return Ok(());
                }
            }
            if !full {
                return Ok(());
            }
            if reverse {
                page.upper = Some(last);
            } else {
                page.lower = last;
                page.lower_inclusive = false;
            }
        }
    }

    fn commit(&self, batch: WriteBatch) -> Result<(), StorageError> {
        if batch.is_empty() {
            return Ok(());
        }
        let pool = self.pool.clone();
        let namespace = self.namespace.clone();
        self.run(async move {
            let mut client = client(&pool).await?;
            let tx = client
                .transaction()
                .await
                .map_err(query_failed("begin a write"))?;
            apply_writes(&tx, &namespace, &batch.writes).await?;
            tx.commit().await.map_err(query_failed("commit a write"))
        })
    }

    fn compare_and_swap(
        &self,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<Vec<u8>>,
    ) -> Result<bool, StorageError> {
        let pool = self.pool.clone();
        let namespace = self.namespace.clone();
        let key = key.to_vec();
        let expected = expected.map(<[u8]>::to_vec);
        self.run(async move {
            let client = client(&pool).await?;
            let changed = match (&expected, &new) {
                (None, Some(value)) => {
                    client
                        .execute(
                            "INSERT INTO corral_kv (namespace, key, value) VALUES ($1, $2, $3)
                             ON CONFLICT (namespace, key) DO NOTHING",
                            &[&namespace, &key, value],
                        )
                        .await
                }
                (Some(old), Some(value)) => {
                    client
                        .execute(
                            "UPDATE corral_kv SET value = $3
                             WHERE namespace = $1 AND key = $2 AND value = $4",
                            &[&namespace, &key, value, old],
                        )
                        .await
                }
                (Some(old), None) => client
                    .execute(
                        "DELETE FROM corral_kv WHERE namespace = $1 AND key = $2 AND value = $3",
                        &[&namespace, &key, old],
                    )
                    .await,
                (None, None) => {
                    let present = client
                        .query_opt(
                            "SELECT 1 FROM corral_kv WHERE namespace = $1 AND key = $2",
                            &[&namespace, &key],
                        )
                        .await
                        .map_err(query_failed("read a key"))?
                        .is_some();
                    return Ok(!present);
                }
            }
            .map_err(query_failed("compare and swap a key"))?;
            Ok(changed == 1)
        })
    }

    fn write_if(
        &self,
        key: &[u8],
        expected: Option<&[u8]>,
        batch: WriteBatch,
    ) -> Result<Option<SyncTicket>, StorageError> {
        let pool = self.pool.clone();
        let namespace = self.namespace.clone();
        let key = key.to_vec();
        let expected = expected.map(<[u8]>::to_vec);
        self.run(async move {
            let mut client = client(&pool).await?;
            let tx = client
                .transaction()
                .await
                .map_err(query_failed("begin a conditional write"))?;
            // The condition's row is locked (or, absent, claimed by a
            // placeholder) until the commit: a concurrent writer waits, then
            // finds it changed.
            let matched = match &expected {
                Some(old) => {
                    tx.execute(
                        "UPDATE corral_kv SET value = value
                         WHERE namespace = $1 AND key = $2 AND value = $3",
                        &[&namespace, &key, old],
                    )
                    .await
                }
                None => {
                    tx.execute(
                        "INSERT INTO corral_kv (namespace, key, value) VALUES ($1, $2, '')
                         ON CONFLICT (namespace, key) DO NOTHING",
                        &[&namespace, &key],
                    )
                    .await
                }
            }
            .map_err(query_failed("check a conditional write"))?;
            if matched != 1 {
                tx.rollback()
                    .await
                    .map_err(query_failed("roll back a conditional write"))?;
                return Ok(None);
            }
            let writes_key = batch.writes.iter().any(|w| match w {
                Write::Put(k, _) | Write::Delete(k) => *k == key,
            });
            let mut writes = batch.writes;
            if expected.is_none() && !writes_key {
                // The placeholder was only a lock.
                writes.push(Write::Delete(key.clone()));
            }
            apply_writes(&tx, &namespace, &writes).await?;
            tx.commit()
                .await
                .map_err(query_failed("commit a conditional write"))?;
            Ok(Some(SyncTicket::DURABLE))
        })
    }

    fn check(&self) -> Result<(), StorageError> {
        let pool = self.pool.clone();
        self.run(async move {
            let probe = async {
                client(&pool)
                    .await?
                    .simple_query("SELECT 1")
                    .await
                    .map_err(query_failed("reach the database"))?;
                Ok(())
            };
            tokio::time::timeout(CHECK_TIMEOUT, probe)
                .await
                .map_err(|e| database("reach the database in time")(Box::new(e)))?
        })
    }

    fn publish(&self, topic: &str) -> Result<(), StorageError> {
        let pool = self.pool.clone();
        let payload = format!("{}\t{}\t{topic}", self.connection.origin, self.namespace);
        self.run(async move {
            client(&pool)
                .await?
                .execute("SELECT pg_notify($1, $2)", &[&CHANGE_CHANNEL, &payload])
                .await
                .map_err(query_failed("publish a change"))?;
            Ok(())
        })
    }

    fn subscribe(&self) -> Option<Changes> {
        let runtime = self.connection.runtime.as_ref()?;
        let sender = self.connection.changes.get_or_init(|| {
            let (sender, _) = broadcast::channel(CHANGE_BACKLOG);
            runtime.spawn(listen_for_changes(
                self.connection.config.clone(),
                self.connection.origin.clone(),
                sender.clone(),
            ));
            sender
        });
        Some(Changes::new(
            sender.subscribe(),
            Arc::from(self.namespace.as_str()),
        ))
    }

    fn next_id(&self) -> Result<u64, StorageError> {
        let pool = self.pool.clone();
        self.run(async move {
            let id: i64 = client(&pool)
                .await?
                .query_one("SELECT nextval('corral_ids')", &[])
                .await
                .map_err(query_failed("draw an id"))?
                .get(0);
            u64::try_from(id).map_err(|_| StorageError::Engine(format!("negative id {id}")))
        })
    }
}

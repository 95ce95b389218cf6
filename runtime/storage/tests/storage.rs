//! Both engines behind the storage seam pass the same checks: sled on a
//! temporary directory, PostgreSQL on the test database (`.ci/postgres`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use corral_storage::{PgStorage, ScanStart, SledStorage, Storage, StorageError, WriteBatch};

/// A namespace no other test run uses.
fn namespace(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{test}-{}-{nanos}", std::process::id())
}

fn postgres(test: &str) -> PgStorage {
    PgStorage::connect(&corral_test_support::database_url(), &namespace(test)).unwrap()
}

fn scan(store: &dyn Storage, prefix: &[u8], start: ScanStart<'_>, reverse: bool) -> Vec<Vec<u8>> {
    let mut keys = Vec::new();
    store
        .scan(prefix, start, reverse, &mut |k, _| {
            keys.push(k.to_vec());
            ControlFlow::Continue(())
        })
        .unwrap();
    keys
}

/// Ordered prefix scans in both directions, across page boundaries, from a
/// key, with 0xFF prefixes, and stopping early.
fn scans_are_ordered(store: &dyn Storage) {
    let mut batch = WriteBatch::default();
    let keys: Vec<Vec<u8>> = (0..600u32)
        .map(|i| format!("a/{i:04}").into_bytes())
        .collect();
    for key in &keys {
        batch.put(key.clone(), key.clone());
    }
    batch.put(b"b/0".to_vec(), b"other".to_vec());
    batch.put(vec![0xFF, 0x00], b"ff0".to_vec());
    batch.put(vec![0xFF, 0xFF], b"ffff".to_vec());
    store.commit(batch).unwrap();

    assert_eq!(scan(store, b"a/", ScanStart::Beginning, false), keys);
    let mut reversed = keys.clone();
    reversed.reverse();
    assert_eq!(scan(store, b"a/", ScanStart::Beginning, true), reversed);
    assert_eq!(
        scan(store, b"a/", ScanStart::After(b"a/0597"), false),
        keys[598..]
    );
    assert_eq!(
        scan(store, b"a/", ScanStart::After(b"a/0002"), true),
        vec![b"a/0001".to_vec(), b"a/0000".to_vec()]
    );
    assert_eq!(
        scan(store, &[0xFF], ScanStart::Beginning, false),
        vec![vec![0xFF, 0x00], vec![0xFF, 0xFF]]
    );
    assert_eq!(scan(store, b"", ScanStart::Beginning, false).len(), 603);
    let mut seen = 0;
    store
        .scan(b"a/", ScanStart::Beginning, false, &mut |_, _| {
            seen += 1;
            if seen == 3 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap();
    assert_eq!(seen, 3);
}

/// Batches apply in order and whole; ids only grow.
fn batches_and_ids(store: &dyn Storage) {
    let mut batch = WriteBatch::default();
    batch.put(b"k".to_vec(), b"1".to_vec());
    batch.put(b"k".to_vec(), b"2".to_vec());
    batch.put(b"gone".to_vec(), b"x".to_vec());
    batch.delete(b"gone".to_vec());
    store.commit(batch).unwrap();
    assert_eq!(store.get(b"k").unwrap(), Some(b"2".to_vec()));
    assert_eq!(store.get(b"gone").unwrap(), None);
    store.commit(WriteBatch::default()).unwrap();
    let first = store.next_id().unwrap();
    let second = store.next_id().unwrap();
    assert!(second > first);
}

/// Compare-and-swap creates, replaces and removes only from the expected
/// value, and of many racing claimers exactly one wins.
fn swaps_are_conditional_and_one_claimer_wins(store: &(dyn Storage + Sync)) {
    assert!(
        store
            .compare_and_swap(b"lease", None, Some(b"a".to_vec()))
            .unwrap()
    );
    assert!(
        !store
            .compare_and_swap(b"lease", None, Some(b"b".to_vec()))
            .unwrap()
    );
    assert!(
        !store
            .compare_and_swap(b"lease", Some(b"x"), Some(b"b".to_vec()))
            .unwrap()
    );
    assert!(
        store
            .compare_and_swap(b"lease", Some(b"a"), Some(b"b".to_vec()))
            .unwrap()
    );
    assert_eq!(store.get(b"lease").unwrap(), Some(b"b".to_vec()));
    assert!(!store.compare_and_swap(b"lease", None, None).unwrap());
    assert!(store.compare_and_swap(b"lease", Some(b"b"), None).unwrap());
    assert_eq!(store.get(b"lease").unwrap(), None);
    assert!(store.compare_and_swap(b"lease", None, None).unwrap());

    let winners = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for claimer in 0..8u8 {
            let winners = &winners;
            scope.spawn(move || {
                if store
                    .compare_and_swap(b"job/1/claim", None, Some(vec![claimer]))
                    .unwrap()
                {
                    winners.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            });
        }
    });
    assert_eq!(winners.into_inner(), 1);
}

/// Conditional batches apply only over the expected value; of writers
/// racing from one read, exactly one wins each round.
fn conditional_batches_admit_one_writer(store: &(dyn Storage + Sync)) {
    let mut batch = WriteBatch::default();
    batch.put(b"head".to_vec(), b"1".to_vec());
    batch.put(b"entry/1".to_vec(), b"a".to_vec());
    assert!(
        store
            .write_if(b"head", None, batch.clone())
            .unwrap()
            .is_some()
    );
    // Absent expected, present actual: nothing written.
    let mut other = WriteBatch::default();
    other.put(b"entry/1".to_vec(), b"overwritten".to_vec());
    assert!(
        store
            .write_if(b"head", None, other.clone())
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .write_if(b"head", Some(b"0"), other)
            .unwrap()
            .is_none()
    );
    assert_eq!(store.get(b"entry/1").unwrap(), Some(b"a".to_vec()));
    // A condition on a key the batch does not write leaves it as it was.
    let mut unrelated = WriteBatch::default();
    unrelated.put(b"side".to_vec(), b"x".to_vec());
    let ticket = store.write_if(b"lock", None, unrelated).unwrap().unwrap();
    store.sync(ticket).unwrap();
    assert_eq!(store.get(b"lock").unwrap(), None);
    assert_eq!(store.get(b"side").unwrap(), Some(b"x".to_vec()));

    for round in 2..6u8 {
        let seen = store.get(b"head").unwrap();
        let winners = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4u8)
                .map(|writer| {
                    let seen = seen.clone();
                    scope.spawn(move || {
                        let mut batch = WriteBatch::default();
                        batch.put(b"head".to_vec(), vec![b'0' + round]);
                        batch.put(format!("entry/{round}").into_bytes(), vec![writer]);
                        store
                            .write_if(b"head", seen.as_deref(), batch)
                            .unwrap()
                            .map(|ticket| store.sync(ticket).unwrap())
                            .is_some()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .filter(|won| *won)
                .count()
        });
        assert_eq!(winners, 1, "round {round}");
    }
}

#[test]
fn sled_passes_the_storage_checks() {
    let store = SledStorage::temporary().unwrap();
    scans_are_ordered(&store);
    batches_and_ids(&store);
    swaps_are_conditional_and_one_claimer_wins(&store);
    conditional_batches_admit_one_writer(&store);
}

#[test]
fn postgres_passes_the_storage_checks() {
    scans_are_ordered(&postgres("scans"));
    batches_and_ids(&postgres("batches"));
    swaps_are_conditional_and_one_claimer_wins(&postgres("swaps"));
    conditional_batches_admit_one_writer(&postgres("conditional"));
}

#[test]
fn postgres_replicas_share_keys_and_ids_and_namespaces_stay_apart() {
    let url = corral_test_support::database_url();
    let shared = namespace("shared");
    let one = PgStorage::connect(&url, &shared).unwrap();
    let two = PgStorage::connect(&url, &shared).unwrap();
    let elsewhere = PgStorage::connect(&url, &namespace("elsewhere")).unwrap();
    let mut batch = WriteBatch::default();
    batch.put(b"event/1".to_vec(), b"hello".to_vec());
    one.commit(batch).unwrap();
    assert_eq!(two.get(b"event/1").unwrap(), Some(b"hello".to_vec()));
    assert_eq!(elsewhere.get(b"event/1").unwrap(), None);
    let a = one.next_id().unwrap();
    let b = two.next_id().unwrap();
    assert_ne!(a, b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_works_from_async_code_and_an_unreachable_database_fails_fast() {
    // Called on an async worker thread, as the memory service does.
    let store = postgres("async");
    let mut batch = WriteBatch::default();
    batch.put(b"x".to_vec(), b"y".to_vec());
    store.commit(batch).unwrap();
    assert_eq!(store.get(b"x").unwrap(), Some(b"y".to_vec()));
    drop(store);

    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = dead.local_addr().unwrap().port();
    drop(dead);
    let started = Instant::now();
    let error =
        PgStorage::connect(&format!("postgres://corral@127.0.0.1:{port}/db"), "x").unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(matches!(error, StorageError::Database { .. }), "{error:?}");
    assert!(error.to_string().contains("connect"), "{error}");
    assert!(std::error::Error::source(&error).is_some());
}

/// Publishes `topic` to `namespace` through `store`'s connection, off the
/// async threads (the seam blocks).
async fn publish(store: &PgStorage, namespace: &str, topic: &'static str) {
    let store = store.namespace(namespace);
    tokio::task::spawn_blocking(move || store.publish(topic).unwrap())
        .await
        .unwrap();
}

/// The next change within 10 s.
async fn next_change(changes: &mut corral_storage::Changes) -> corral_storage::Change {
    tokio::time::timeout(Duration::from_secs(10), changes.next())
        .await
        .expect("no change within 10 s")
        .expect("the store closed")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_delivers_changes_to_other_processes_and_resyncs_after_losing_the_database() {
    use corral_storage::Change;
    let url = corral_test_support::database_url();
    let shared = namespace("changes");
    let target: std::net::SocketAddr = {
        let config: tokio_postgres::Config = url.parse().unwrap();
        let port = config.get_ports().first().copied().unwrap_or(5432);
        format!("127.0.0.1:{port}").parse().unwrap()
    };
    // The listening replica reaches the database through a proxy the test
    // cuts; the publishing one directly.
    let mut proxy = corral_test_support::TcpProxy::start("127.0.0.1:0".parse().unwrap(), target);
    let proxied = url.replacen(
        &format!("127.0.0.1:{}", target.port()),
        &proxy.addr.to_string(),
        1,
    );
    assert_ne!(proxied, url, "the test URL names 127.0.0.1:<port>: {url}");
    let publisher = PgStorage::connect(&url, &shared).unwrap();
    let listener = PgStorage::connect(&proxied, &shared).unwrap();
    let mut changes = listener.subscribe().expect("PostgreSQL delivers changes");
    let mut other_namespace = listener
        .namespace(&namespace("unrelated"))
        .subscribe()
        .unwrap();
    // Listening starts with a resync: changes before it were not seen.
    assert_eq!(next_change(&mut changes).await, Change::Resync);
    assert_eq!(next_change(&mut other_namespace).await, Change::Resync);

    publish(&publisher, &shared, "index").await;
    assert_eq!(
        next_change(&mut changes).await,
        Change::Topic("index".into())
    );
    // Another namespace's subscriber is not told, and nobody hears itself.
    let mut own = publisher.subscribe().unwrap();
    assert_eq!(next_change(&mut own).await, Change::Resync);
    publish(&publisher, &shared, "second").await;
    assert_eq!(
        next_change(&mut changes).await,
        Change::Topic("second".into())
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(300), own.next())
            .await
            .is_err()
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(300), other_namespace.next())
            .await
            .is_err()
    );

    // The listener loses the database, reconnects, and resyncs.
    proxy.stop();
    let proxy = corral_test_support::TcpProxy::start(proxy.addr, target);
    assert_eq!(next_change(&mut changes).await, Change::Resync);
    drop(proxy);
}

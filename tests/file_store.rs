//! The file store passes the store conformance suite, shares its sessions
//! and owner indexes between stores (and processes) on one directory, keeps
//! them across restarts, and cleans up after itself. Its owner indexes
//! survive bad entries and revoke many sessions quickly, a write abandoned
//! by a timeout never lands, and it refuses a directory others control.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use session::store::file::{FileStore, UnsafeDirectory};
use session::store::{
    conformance, ChangeSet, Created, ExpiredCleanup, Moved, Record, Update, Updated,
};
use session::{SessionStore, StoreKey};

const HOUR: Duration = Duration::from_secs(60 * 60);
/// A lifetime that is over once [`EXPIRY_WAIT`] has passed.
const BLINK: Duration = Duration::from_millis(1);
const EXPIRY_WAIT: Duration = Duration::from_millis(20);

/// The names of the owners "ann"'s and "bob"'s indexes: SHA-256 in hex.
const ANN_INDEX: &str = "49915e0d7d4b402e3017d010bc1c0e83cac6c797d6c16e66340fe3268693a6a1";
const BOB_INDEX: &str = "81b637d8fcd2c6da6359e6963113a1170de795e4b725b84d1e0b4cfd9ec58ce9";

/// Tells the test binary, run again by [`two_processes_racing_updates_of_different_fields_all_survive`],
/// to act as the second process: the directory it writes to.
const CHILD_DIR: &str = "FILE_STORE_TEST_CHILD_DIR";
/// Updates each of the two processes makes.
const PROCESS_ROUNDS: usize = 200;

// ---------------------------------------------------------------------------
// The conformance suite

#[tokio::test]
async fn file_store_conforms() {
    let dir = TempDir::new("conforms");
    conformance::run(&FileStore::new(dir.path()).unwrap()).await;
}

#[tokio::test]
async fn file_store_cleans_up_as_the_contract_says() {
    let dir = TempDir::new("cleanup-contract");
    conformance::run_cleanup(&FileStore::new(dir.path()).unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn file_store_conforms_when_writes_race_on_threads() {
    let dir = TempDir::new("parallel");
    conformance::run_parallel(Arc::new(FileStore::new(dir.path()).unwrap())).await;
}

/// Durable writes, and a sweep in the background after every write, change
/// nothing a client of the store can see.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_store_conforms_while_durable_and_sweeping_on_every_write() {
    let dir = TempDir::new("sweeping");
    let store = || {
        FileStore::new(dir.path())
            .unwrap()
            .durable(true)
            .sweep_period(Duration::ZERO)
    };
    conformance::run(&store()).await;
    conformance::run_parallel(Arc::new(store())).await;
}

/// Two stores on one directory, as two processes would have, pass the races
/// of the suite: every write goes through the file locks.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_on_one_directory_race_like_one() {
    let dir = TempDir::new("two-stores-race");
    let (a, b) = (store(&dir), store(&dir));
    let key = key("race");
    create(&a, &key, &set(&[("start", "1")], HOUR)).await;
    let (a, b) = (Arc::new(a), Arc::new(b));
    let tasks: Vec<_> = (0..8)
        .map(|task| {
            let store = if task % 2 == 0 { &a } else { &b };
            let (store, key) = (Arc::clone(store), key.clone());
            tokio::spawn(async move {
                for round in 0..20 {
                    let field = leak(format!("t{task}-r{round}"));
                    let change = set(&[(field, "1")], HOUR);
                    assert!(matches!(
                        store.update(&key, &change).await.unwrap(),
                        Updated::Written(_)
                    ));
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let record = load(&*a, &key).await;
    assert_eq!(record.fields.len(), 1 + 8 * 20, "lost updates");
    for task in 0..8 {
        for round in 0..20 {
            assert!(
                record
                    .fields
                    .contains_key(format!("t{task}-r{round}").as_str()),
                "task {task} round {round} was lost"
            );
        }
    }
    assert_eq!(*load(&*b, &key).await.fields, *record.fields);
}

#[tokio::test]
async fn two_stores_on_one_directory_share_sessions_and_owner_indexes() {
    let dir = TempDir::new("two-stores-share");
    let (a, b) = (store(&dir), store(&dir));
    let (first, second) = (key("first"), key("second"));
    create(&a, &first, &set(&[("a", "1")], HOUR).owned_by("ann")).await;
    let record = load(&b, &first).await;
    assert_eq!(record.fields.get("a"), Some(Bytes::from_static(b"1")));
    assert_eq!(record.owner.as_deref(), Some("ann"));

    assert_eq!(
        b.create(&first, &set(&[("x", "1")], HOUR)).await.unwrap(),
        Created::KeyTaken,
        "a store saw no session another store created"
    );
    create(&b, &second, &set(&[("b", "1")], HOUR).owned_by("ann")).await;
    let mut listed: Vec<String> = a
        .list_owned("ann")
        .await
        .unwrap()
        .into_iter()
        .map(|owned| owned.key.as_str().to_owned())
        .collect();
    listed.sort();
    let mut expected = vec![first.as_str().to_owned(), second.as_str().to_owned()];
    expected.sort();
    assert_eq!(listed, expected, "the owner index is not shared");

    assert_eq!(a.delete_owned("ann", Some(&first)).await.unwrap(), 1);
    assert_eq!(b.load(&second).await.unwrap(), None);
    let listed = b.list_owned("ann").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].key, first);
}

/// The test binary runs this test again as a second process (told apart by
/// an environment variable), which updates one session while this one does:
/// every field of both survives.
#[test]
fn two_processes_racing_updates_of_different_fields_all_survive() {
    if let Some(dir) = std::env::var_os(CHILD_DIR) {
        return write_as_the_second_process(PathBuf::from(dir));
    }
    let dir = TempDir::new("processes");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = store(&dir);
    let key = StoreKey::new("shared-by-processes");
    runtime.block_on(create(&store, &key, &set(&[("start", "1")], HOUR)));

    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "two_processes_racing_updates_of_different_fields_all_survive",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    runtime.block_on(async {
        // Start once the child writes, so that the writes overlap.
        let started = Instant::now();
        while !load(&store, &key).await.fields.contains_key("child-0") {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the child process never wrote"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        for round in 0..PROCESS_ROUNDS {
            let field = leak(format!("parent-{round}"));
            update(&store, &key, &set(&[(field, "1")], HOUR)).await;
        }
    });
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("child process wrote"),
        "the child process failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let record = runtime.block_on(load(&store, &key));
    for round in 0..PROCESS_ROUNDS {
        for writer in ["parent", "child"] {
            assert!(
                record
                    .fields
                    .contains_key(format!("{writer}-{round}").as_str()),
                "{writer}'s update {round} was lost"
            );
        }
    }
    assert_eq!(record.fields.len(), 1 + 2 * PROCESS_ROUNDS);
}

/// The second process of the test above.
fn write_as_the_second_process(dir: PathBuf) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = FileStore::new(dir).unwrap();
    let key = StoreKey::new("shared-by-processes");
    runtime.block_on(async {
        for round in 0..PROCESS_ROUNDS {
            let field = leak(format!("child-{round}"));
            update(&store, &key, &set(&[(field, "1")], HOUR)).await;
        }
    });
    println!("child process wrote {PROCESS_ROUNDS} fields");
}

/// "Log out everywhere" through one store while another store on the
/// directory (as another process would) keeps regenerating the owner's
/// sessions: once revoking returns, none is live, whatever key it hopped to.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revoking_through_one_store_ends_sessions_hopping_through_another() {
    let dir = TempDir::new("revoke-across-stores");
    let (revoker, mover) = (store(&dir), Arc::new(store(&dir)));
    for round in 0..20 {
        let owner = format!("hopper-{round}");
        let mut hoppers = Vec::new();
        for session in 0..3 {
            let start = key(&format!("hop-{round}-{session}-0"));
            create(&revoker, &start, &set(&[("a", "1")], HOUR).owned_by(&owner)).await;
            let mover = Arc::clone(&mover);
            hoppers.push(tokio::spawn(async move {
                let mut visited = vec![start.clone()];
                let mut at = start;
                for hop in 1..50 {
                    let Some(seen) = mover.load(&at).await.unwrap() else {
                        break;
                    };
                    let to = key(&format!("hop-{round}-{session}-{hop}"));
                    visited.push(to.clone());
                    let touch = ChangeSet::touch(HOUR);
                    match mover.rekey(&at, &to, &touch, &seen).await.unwrap() {
                        Moved::Written(_) => at = to,
                        Moved::Gone | Moved::KeyTaken => break,
                    }
                }
                visited
            }));
        }
        revoker.delete_owned(&owner, None).await.unwrap();
        for hopper in hoppers {
            for key in hopper.await.unwrap() {
                let survivor = revoker.load(&key).await.unwrap();
                assert_eq!(survivor, None, "round {round}: {key:?} survived revocation");
            }
        }
        assert!(revoker.list_owned(&owner).await.unwrap().is_empty());
    }
}

/// A lock another open file holds on a session's stripe (as another process
/// or thread would) holds the store's writes back, but not its loads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_wait_for_a_lock_held_elsewhere() {
    let dir = TempDir::new("held-lock");
    let store = Arc::new(store(&dir));
    let key = key("locked");
    create(&*store, &key, &set(&[("a", "1")], HOUR)).await;
    let held: Vec<File> = (0..=255u8)
        .map(|stripe| {
            let path = dir.path().join(format!("locks/session-{stripe:02x}"));
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)
                .unwrap();
            file.lock().unwrap();
            file
        })
        .collect();
    let writer = {
        let (store, key) = (Arc::clone(&store), key.clone());
        tokio::spawn(async move { update(&*store, &key, &set(&[("b", "2")], HOUR)).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !writer.is_finished(),
        "an update went on while another open file held its lock"
    );
    let record = tokio::time::timeout(Duration::from_secs(10), store.load(&key))
        .await
        .expect("a load waited for a lock")
        .unwrap()
        .unwrap();
    assert!(!record.fields.contains_key("b"));
    drop(held);
    tokio::time::timeout(Duration::from_secs(10), writer)
        .await
        .expect("the update did not go on once the lock was released")
        .unwrap();
    assert!(load(&*store, &key).await.fields.contains_key("b"));
}

// ---------------------------------------------------------------------------
// Restarts, torn writes, clean-up

#[tokio::test]
async fn sessions_survive_reopening_the_store() {
    let dir = TempDir::new("reopen");
    let key = key("reopen");
    let change = ChangeSet {
        max_age: Update::Set(Some(2 * HOUR)),
        ..set(&[("a", "1"), ("bytes", "\0\u{ff}")], HOUR).owned_by("ann")
    };
    let written = {
        let store = store(&dir);
        create(&store, &key, &change).await;
        load(&store, &key).await
    };
    let store = store(&dir);
    let reread = load(&store, &key).await;
    assert_eq!(reread.fields, written.fields);
    assert_eq!(reread.max_age, Some(2 * HOUR));
    assert_eq!(reread.owner.as_deref(), Some("ann"));
    assert!(reread.ttl <= written.ttl && reread.ttl + Duration::from_secs(5) >= written.ttl);
    let listed = store.list_owned("ann").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].key, key);
}

/// What a writer that crashed before its rename leaves (a temp file,
/// complete or torn) does not change what loads.
#[tokio::test]
async fn a_leftover_temp_file_does_not_affect_loading() {
    let dir = TempDir::new("torn");
    let store = store(&dir);
    let key = key("torn");
    create(&store, &key, &set(&[("a", "1")], HOUR)).await;
    let data = the_session_file(&dir);
    let valid = fs::read(&data).unwrap();
    let name = data.file_name().unwrap().to_str().unwrap();
    let torn = data.with_file_name(format!(".{name}.0123456789abcdef.tmp"));
    fs::write(&torn, &valid[..valid.len() / 2]).unwrap();
    let whole = data.with_file_name(format!(".{name}.fedcba9876543210.tmp"));
    fs::write(&whole, b"{\"key\":\"torn\"}").unwrap();

    let record = load(&store, &key).await;
    assert_eq!(*record.fields, fields(&[("a", "1")]));
    update(&store, &key, &set(&[("b", "2")], HOUR)).await;
    let record = load(&store, &key).await;
    assert_eq!(*record.fields, fields(&[("a", "1"), ("b", "2")]));
    // Young temp files may be writes in progress: clean-up leaves them.
    assert_eq!(store.delete_expired().await.unwrap(), 0);
    assert!(torn.exists() && whole.exists());
    assert_eq!(session_files(&dir), [data]);
}

#[tokio::test]
async fn cleanup_removes_expired_empty_unparsable_and_stale_files() {
    let dir = TempDir::new("cleanup-files");
    let store = store(&dir);
    let (live, expired, owned_expired) = (key("live"), key("expired"), key("owned-expired"));
    create(&store, &live, &set(&[("a", "1")], HOUR).owned_by("bob")).await;
    create(&store, &expired, &set(&[("a", "1")], BLINK)).await;
    create(
        &store,
        &owned_expired,
        &set(&[("a", "1")], BLINK).owned_by("ann"),
    )
    .await;
    tokio::time::sleep(EXPIRY_WAIT).await;

    let sessions = dir.path().join("sessions");
    let empty = place(&sessions, &session_file('0'), b"");
    let unparsable = place(&sessions, &session_file('1'), b"{\"key\": \"tor");
    let misnamed = place(
        &sessions,
        &session_file('2'),
        b"{\"key\":\"other\",\"expires_at\":0}",
    );
    let stale_temp = place(&sessions, "ab/.x.json.00.tmp", b"{\"key\"");
    let young_temp = place(&sessions, "ab/.x.json.01.tmp", b"{\"key\"");
    let two_hours_ago = SystemTime::now() - 2 * HOUR;
    File::options()
        .write(true)
        .open(&stale_temp)
        .unwrap()
        .set_modified(two_hours_ago)
        .unwrap();
    let foreign = sessions.join("README");
    fs::write(&foreign, b"not the store's").unwrap();
    // An index entry a crash left: a session that does not exist.
    let bob = index_dir(&dir, BOB_INDEX);
    fs::write(bob.join("f".repeat(64)), b"").unwrap();

    assert_eq!(
        store.delete_expired().await.unwrap(),
        2,
        "delete_expired counts the expired sessions it deleted"
    );
    for gone in [&empty, &unparsable, &misnamed, &stale_temp] {
        assert!(!gone.exists(), "clean-up left {}", gone.display());
    }
    for kept in [&young_temp, &foreign] {
        assert!(kept.exists(), "clean-up removed {}", kept.display());
    }
    assert_eq!(session_files(&dir).len(), 1, "{:?}", session_files(&dir));
    load(&store, &live).await;
    assert_eq!(store.load(&expired).await.unwrap(), None);
    let ann = index_dir(&dir, ANN_INDEX);
    assert!(
        entries(&ann).is_empty(),
        "ann's index outlived her sessions"
    );
    assert_eq!(
        entries(&bob),
        [session_name(&the_session_file(&dir))],
        "a stale index entry survived"
    );
    // An index empty for an hour goes; one with entries stays.
    for index in [&ann, &bob] {
        File::open(index)
            .unwrap()
            .set_modified(two_hours_ago)
            .unwrap();
    }
    store.delete_expired().await.unwrap();
    assert_eq!(owner_indexes(&dir), [bob]);
    assert_eq!(store.list_owned("bob").await.unwrap().len(), 1);
    assert!(store.list_owned("ann").await.unwrap().is_empty());
}

#[tokio::test]
async fn unparsable_session_files_load_as_nothing_and_can_be_replaced() {
    let dir = TempDir::new("unparsable");
    let store = store(&dir);
    let key = key("unparsable");
    create(&store, &key, &set(&[("a", "1")], HOUR)).await;
    let data = the_session_file(&dir);
    fs::write(&data, b"\0\0garbage").unwrap();
    assert_eq!(store.load(&key).await.unwrap(), None);
    assert_eq!(
        store.update(&key, &set(&[("b", "1")], HOUR)).await.unwrap(),
        Updated::Gone
    );
    create(&store, &key, &set(&[("c", "1")], HOUR)).await;
    assert_eq!(*load(&store, &key).await.fields, fields(&[("c", "1")]));
}

#[tokio::test]
async fn expired_sessions_are_swept_without_a_cleanup_call() {
    let dir = TempDir::new("self-sweeping");
    let store = FileStore::new(dir.path())
        .unwrap()
        .sweep_period(Duration::from_millis(1));
    create(&store, &key("short-lived"), &set(&[("a", "1")], BLINK)).await;
    tokio::time::sleep(EXPIRY_WAIT).await;
    let next = key("next");
    create(&store, &next, &set(&[("a", "1")], HOUR)).await;
    let started = Instant::now();
    while session_files(&dir).len() > 1 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no sweep removed the expired session: {:?}",
            session_files(&dir)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    load(&store, &next).await;
}

#[tokio::test]
async fn the_layout_is_sharded_and_files_are_private() {
    let dir = TempDir::new("layout");
    let store = store(&dir);
    assert_eq!(store.dir(), dir.path());
    create(&store, &key("app:/../x y"), &set(&[("a", "1")], HOUR)).await;
    let data = the_session_file(&dir);
    let name = data.file_stem().unwrap().to_str().unwrap();
    assert_eq!(name.len(), 64, "{name}");
    assert_eq!(data.parent().unwrap().file_name().unwrap(), &name[..2]);
    let json: serde_json::Value = serde_json::from_slice(&fs::read(&data).unwrap()).unwrap();
    assert_eq!(json["key"].as_str(), Some(key("app:/../x y").as_str()));
    assert_eq!(json["fields"]["a"].as_str(), Some("MQ=="));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&data).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "session files are private");
    }
}

// ---------------------------------------------------------------------------
// Owner indexes, abandoned writes, the directory

/// Names no session file can have: too short, not hex, upper case, or
/// reaching out of the store's directory.
const BAD_NAMES: [&str; 7] = [
    "",
    "a",
    "ab",
    "../x",
    "../../../../../../etc/passwd",
    "gggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggg",
    "ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789",
];

/// An owner index with bad entries (written by hand, a bug, or an older
/// version's JSON index) is no reason to panic: listing, revoking and
/// sweeping skip the bad entries and still handle the good ones.
#[tokio::test]
async fn bad_owner_index_entries_are_skipped_not_fatal() {
    let dir = TempDir::new("bad-index");
    let (first, second, bobs) = (key("ann-1"), key("ann-2"), key("bob-1"));
    {
        let store = store(&dir);
        for key in [&first, &second] {
            create(&store, key, &set(&[("a", "1")], HOUR).owned_by("ann")).await;
        }
        create(&store, &bobs, &set(&[("a", "1")], HOUR).owned_by("bob")).await;
    }
    let mut entries: Vec<String> = session_files(&dir)
        .iter()
        .filter(|file| fs::read_to_string(file).unwrap().contains("\"ann\""))
        .map(|file| session_name(file))
        .collect();
    assert_eq!(entries.len(), 2);
    entries.extend(BAD_NAMES.map(String::from));
    // The index as a JSON file (the first layout), replacing any there.
    let legacy = dir
        .path()
        .join(format!("owners/{}/{ANN_INDEX}.json", &ANN_INDEX[..2]));
    fs::create_dir_all(legacy.parent().unwrap()).unwrap();
    let index = serde_json::json!({ "owner": "ann", "sessions": entries });
    fs::write(&legacy, serde_json::to_vec(&index).unwrap()).unwrap();
    // Stray files in the index directory of the current layout.
    let ann = index_dir(&dir, ANN_INDEX);
    fs::create_dir_all(ann.join("a-directory")).unwrap();
    for name in BAD_NAMES
        .iter()
        .filter(|name| !name.is_empty() && !name.contains('/'))
    {
        fs::write(ann.join(name), b"").unwrap();
    }
    fs::write(dir.path().join("owned/not-a-stripe"), b"").unwrap();

    let store = store(&dir);
    let mut listed: Vec<StoreKey> = store
        .list_owned("ann")
        .await
        .unwrap()
        .into_iter()
        .map(|owned| owned.key)
        .collect();
    listed.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    assert_eq!(listed, [first.clone(), second.clone()]);
    assert!(!legacy.exists(), "the JSON index was not moved");
    store.delete_expired().await.unwrap();
    assert_eq!(store.list_owned("ann").await.unwrap().len(), 2);
    assert_eq!(store.delete_owned("ann", None).await.unwrap(), 2);
    assert!(store.list_owned("ann").await.unwrap().is_empty());
    for key in [&first, &second] {
        assert_eq!(store.load(key).await.unwrap(), None);
    }
    load(&store, &bobs).await;
    assert_eq!(store.list_owned("bob").await.unwrap().len(), 1);
    store.delete_expired().await.unwrap();
    load(&store, &bobs).await;
}

/// A write the caller gave up on (a store timeout drops its future) while
/// its blocking task waited never lands later: it cannot overwrite a newer
/// write, and an abandoned create leaves no session nobody knows the id of.
#[test]
fn writes_abandoned_by_a_timeout_never_land() {
    let dir = TempDir::new("abandoned");
    let store = store(&dir);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (updated, orphan) = (key("abandoned-update"), key("abandoned-create"));
    runtime.block_on(create(&store, &updated, &set(&[("a", "first")], HOUR)));

    let stalled = StalledRuntime::new();
    stalled.runtime.block_on(async {
        let late_update = set(&[("a", "late")], HOUR);
        let late_create = set(&[("a", "orphan")], HOUR);
        let late = store.update(&updated, &late_update);
        let timed_out = tokio::time::timeout(Duration::from_millis(50), late).await;
        assert!(timed_out.is_err(), "the stalled update finished");
        let late = store.create(&orphan, &late_create);
        let timed_out = tokio::time::timeout(Duration::from_millis(50), late).await;
        assert!(timed_out.is_err(), "the stalled create finished");
    });
    // The client, told the write failed, writes again.
    runtime.block_on(update(&store, &updated, &set(&[("a", "newer")], HOUR)));
    stalled.release();

    let record = runtime.block_on(load(&store, &updated));
    assert_eq!(
        record.fields.get("a"),
        Some(Bytes::from_static(b"newer")),
        "an abandoned update overwrote a newer one"
    );
    assert_eq!(runtime.block_on(store.load(&orphan)).unwrap(), None);
    assert_eq!(
        session_files(&dir).len(),
        1,
        "an abandoned create left a file"
    );
}

/// A directory others can write in (or that another user owns) could have
/// its sessions read or replaced: the store refuses it. One it creates is
/// private.
#[cfg(unix)]
#[test]
fn the_store_refuses_a_directory_others_control() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;

    let created = TempDir::new("private");
    store(&created);
    for dir in ["", "sessions", "owned", "locks"] {
        let path = created.path().join(dir);
        assert_eq!(mode(&path), 0o700, "{} is not private", path.display());
    }

    let existing = TempDir::new("existing");
    fs::create_dir(existing.path()).unwrap();
    fs::set_permissions(existing.path(), fs::Permissions::from_mode(0o755)).unwrap();
    store(&existing);

    for open_mode in [0o777, 0o770, 0o702, 0o1777] {
        let dir = TempDir::new("open-to-others");
        fs::create_dir(dir.path()).unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(open_mode)).unwrap();
        match refusal(dir.path()) {
            UnsafeDirectory::WritableByOthers { path, mode } => {
                assert_eq!((path.as_path(), mode), (dir.path(), open_mode));
            }
            other => panic!("refused for another reason: {other}"),
        }
        assert!(
            fs::read_dir(dir.path()).unwrap().next().is_none(),
            "the store wrote in a directory it refused"
        );
    }

    let sub = TempDir::new("open-subdirectory");
    store(&sub);
    let locks = sub.path().join("locks");
    fs::set_permissions(&locks, fs::Permissions::from_mode(0o777)).unwrap();
    assert!(matches!(
        refusal(sub.path()),
        UnsafeDirectory::WritableByOthers { path, .. } if path == locks
    ));

    // Only root can give a directory away; other users skip this part.
    let foreign = TempDir::new("foreign");
    fs::create_dir(foreign.path()).unwrap();
    fs::set_permissions(foreign.path(), fs::Permissions::from_mode(0o700)).unwrap();
    match std::os::unix::fs::chown(foreign.path(), Some(65534), None) {
        Ok(()) => match refusal(foreign.path()) {
            UnsafeDirectory::NotOwned { owner, .. } => assert_eq!(owner, 65534),
            other => panic!("refused for another reason: {other}"),
        },
        Err(error) => eprintln!("skipped the directory of another user (not root): {error}"),
    }
}

/// Why the store refused to open `dir`.
#[cfg(unix)]
fn refusal(dir: &Path) -> UnsafeDirectory {
    let error = FileStore::new(dir).expect_err("an unsafe directory");
    assert_eq!(
        error.kind(),
        std::io::ErrorKind::PermissionDenied,
        "{error}"
    );
    assert!(
        error.to_string().contains(&dir.display().to_string()),
        "the error does not name the directory: {error}"
    );
    *error
        .into_inner()
        .expect("an error with a source")
        .downcast::<UnsafeDirectory>()
        .expect("an UnsafeDirectory")
}

/// An owner with 10,000 live sessions is revoked within the store timeout,
/// and none of them survives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_ten_thousand_sessions_ends_them_all_in_time() {
    let dir = TempDir::new("ten-thousand");
    conformance::run_revoke_many(Arc::new(store(&dir)), 10_000).await;
    assert!(session_files(&dir).is_empty(), "sessions survived");
}

// ---------------------------------------------------------------------------
// Helpers

/// A runtime whose one blocking thread is busy until [`release`](Self::release):
/// a store call made on it waits for its blocking task to start, as one
/// stuck behind a slow disk would.
struct StalledRuntime {
    runtime: tokio::runtime::Runtime,
    unblock: std::sync::mpsc::Sender<()>,
}

impl StalledRuntime {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .max_blocking_threads(1)
            .build()
            .unwrap();
        let (unblock, blocked) = std::sync::mpsc::channel::<()>();
        runtime.spawn_blocking(move || blocked.recv());
        Self { runtime, unblock }
    }

    /// Frees the blocking thread and waits until it has run every task
    /// queued behind it: it takes them in order.
    fn release(self) {
        self.unblock.send(()).unwrap();
        self.runtime
            .block_on(self.runtime.spawn_blocking(|| ()))
            .unwrap();
    }
}

/// A fresh directory under the system's temp directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        Self(std::env::temp_dir().join(format!("session-file-store-{name}-{pid}-{nanos}-{n}")))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn store(dir: &TempDir) -> FileStore {
    FileStore::new(dir.path()).unwrap()
}

fn key(name: &str) -> StoreKey {
    StoreKey::new(format!("test:{name}"))
}

fn leak(name: String) -> &'static str {
    Box::leak(name.into_boxed_str())
}

fn set(pairs: &[(&'static str, &str)], default_max_age: Duration) -> ChangeSet {
    ChangeSet {
        set: pairs
            .iter()
            .map(|(name, value)| (*name, Bytes::copy_from_slice(value.as_bytes())))
            .collect(),
        remove: Vec::new(),
        max_age: Update::Keep,
        default_max_age,
        owner: Update::Keep,
        seen_max_age: None,
    }
}

trait Owned {
    fn owned_by(self, owner: &str) -> Self;
}

impl Owned for ChangeSet {
    fn owned_by(self, owner: &str) -> Self {
        Self {
            owner: Update::Set(Some(owner.into())),
            ..self
        }
    }
}

fn fields(pairs: &[(&str, &str)]) -> session::store::Fields {
    pairs
        .iter()
        .map(|(name, value)| (*name, Bytes::copy_from_slice(value.as_bytes())))
        .collect()
}

async fn create(store: &dyn SessionStore, key: &StoreKey, changes: &ChangeSet) {
    assert!(matches!(
        store.create(key, changes).await.unwrap(),
        Created::Written(_)
    ));
}

async fn update(store: &dyn SessionStore, key: &StoreKey, changes: &ChangeSet) {
    assert!(matches!(
        store.update(key, changes).await.unwrap(),
        Updated::Written(_)
    ));
}

async fn load(store: &dyn SessionStore, key: &StoreKey) -> Record {
    store.load(key).await.unwrap().expect("a live session")
}

/// `sessions/dd/ddd…d.json` for a hex digit `d`: where a session file may be.
fn session_file(digit: char) -> String {
    let name = digit.to_string().repeat(64);
    format!("{}/{name}.json", &name[..2])
}

/// Writes `contents` to `sessions/{path}`.
fn place(sessions: &Path, path: &str, contents: &[u8]) -> PathBuf {
    let path = sessions.join(path);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, contents).unwrap();
    path
}

/// The `.json` files two levels below `dir`.
fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for shard in fs::read_dir(dir).unwrap() {
        let shard = shard.unwrap().path();
        if !shard.is_dir() {
            continue;
        }
        for file in fs::read_dir(&shard).unwrap() {
            let path = file.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap();
            if name.ends_with(".json") && !name.starts_with('.') {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The file of the one session in `dir`.
fn the_session_file(dir: &TempDir) -> PathBuf {
    let mut files = session_files(dir);
    assert_eq!(files.len(), 1, "one session, one file: {files:?}");
    files.remove(0)
}

fn session_files(dir: &TempDir) -> Vec<PathBuf> {
    json_files(&dir.path().join("sessions"))
}

/// The name of a session's file without `.json`, as index entries have it.
fn session_name(file: &Path) -> String {
    file.file_stem().unwrap().to_str().unwrap().to_owned()
}

/// The index directory of the owner whose SHA-256 is `owner_name`.
fn index_dir(dir: &TempDir, owner_name: &str) -> PathBuf {
    dir.path()
        .join("owned")
        .join(&owner_name[..2])
        .join(owner_name)
}

/// The owner indexes in `dir`: the directories two levels below `owned/`.
fn owner_indexes(dir: &TempDir) -> Vec<PathBuf> {
    let mut indexes = Vec::new();
    for shard in fs::read_dir(dir.path().join("owned")).unwrap() {
        let shard = shard.unwrap().path();
        if shard.is_dir() {
            indexes.extend(
                fs::read_dir(&shard)
                    .unwrap()
                    .map(|index| index.unwrap().path()),
            );
        }
    }
    indexes.sort();
    indexes
}

/// The entries of an owner index.
fn entries(index: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(index)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

use std::sync::Arc;

use super::log_queue::LogQueue;
use super::schema::{numbered_steps, schema_steps, SCHEMA};
use super::upkeep::checkpoint;
use super::*;
use crate::core::address::EmailAddress;
use crate::store::{ConversationAliases, Direction, LogEntry, Participant, UserId};

fn temp_store() -> (tempfile::TempDir, Arc<Database>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Database::open(&dir.path().join("relay.db")).unwrap());
    (dir, store)
}

/// The conversation between users a (alice@a.example) and b (bob@b.example).
fn alice_and_bob(store: &Database) -> ConversationAliases {
    store
        .create_conversation(
            &person("a", "alice@a.example"),
            &person("b", "bob@b.example"),
            1,
        )
        .unwrap()
        .0
}

fn person(id: &str, email: &str) -> Participant {
    Participant {
        user_id: UserId::parse(id).unwrap(),
        email: EmailAddress::parse(email).unwrap(),
        display_name: None,
    }
}

#[test]
fn database_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, _store) = temp_store();
    let mode = std::fs::metadata(dir.path().join("relay.db"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

/// Sorts, statement journals and transient indices would otherwise go to
/// temp files (unlinked at once, but on disk and never securely erased).
#[test]
fn every_connection_keeps_temporary_data_in_memory() {
    const MEMORY: i64 = 2;
    let (_dir, store) = temp_store();
    let writer: i64 = lock(&store.writer)
        .query_row("PRAGMA temp_store", [], |row| row.get(0))
        .unwrap();
    assert_eq!(writer, MEMORY);
    let reader: i64 = store
        .with_reader(|conn| Ok(conn.query_row("PRAGMA temp_store", [], |row| row.get(0))?))
        .unwrap();
    assert_eq!(reader, MEMORY);
}

#[test]
fn conversations_are_idempotent_per_pair_in_either_order() {
    let (_dir, store) = temp_store();
    let a = person("a", "alice@a.example");
    let b = person("b", "bob@b.example");
    let (first, created) = store.create_conversation(&a, &b, 100).unwrap();
    assert!(created);
    assert_ne!(first.alias_a, first.alias_b);
    let (again, created) = store.create_conversation(&a, &b, 200).unwrap();
    assert!(!created);
    assert_eq!(again, first);
    let (swapped, _) = store.create_conversation(&b, &a, 300).unwrap();
    assert_eq!(swapped.alias_a, first.alias_b);
    assert_eq!(swapped.alias_b, first.alias_a);
    assert!(matches!(
        store.create_conversation(&a, &a, 1),
        Err(StoreError::SameUser)
    ));
}

#[test]
fn routes_point_at_owner_and_partner() {
    let (_dir, store) = temp_store();
    let conv = alice_and_bob(&store);
    let route = store.route(&conv.alias_a).unwrap().unwrap();
    assert_eq!(route.owner_email, "alice@a.example");
    assert_eq!(route.partner_email, "bob@b.example");
    assert_eq!(route.partner_alias, conv.alias_b);
    assert!(store.route("nosuchalias").unwrap().is_none());
}

#[test]
fn different_conversations_of_a_user_share_no_alias() {
    let (_dir, store) = temp_store();
    let a = person("a", "alice@a.example");
    let (one, _) = store
        .create_conversation(&a, &person("b", "bob@b.example"), 1)
        .unwrap();
    let (two, _) = store
        .create_conversation(&a, &person("c", "carol@c.example"), 1)
        .unwrap();
    assert_ne!(one.alias_a, two.alias_a);
    assert_ne!(one.conversation_id, two.conversation_id);
}

#[test]
fn revoked_aliases_stop_routing_and_a_new_pair_gets_new_aliases() {
    let (_dir, store) = temp_store();
    let a = person("a", "alice@a.example");
    let b = person("b", "bob@b.example");
    let (conv, _) = store.create_conversation(&a, &b, 1).unwrap();
    assert!(store.revoke_conversation(&conv.conversation_id, 2).unwrap());
    assert!(!store.revoke_conversation(&conv.conversation_id, 3).unwrap());
    assert!(store.route(&conv.alias_a).unwrap().is_none());
    assert!(store.route(&conv.alias_b).unwrap().is_none());
    let (fresh, created) = store.create_conversation(&a, &b, 4).unwrap();
    assert!(created);
    assert_ne!(fresh.alias_a, conv.alias_a);
}

#[test]
fn changed_email_is_updated() {
    let (_dir, store) = temp_store();
    let (conv, _) = store
        .create_conversation(
            &person("a", "old@a.example"),
            &person("b", "bob@b.example"),
            1,
        )
        .unwrap();
    store
        .create_conversation(
            &person("a", "new@a.example"),
            &person("b", "bob@b.example"),
            2,
        )
        .unwrap();
    assert_eq!(
        store.route(&conv.alias_a).unwrap().unwrap().owner_email,
        "new@a.example"
    );
}

/// Promise 5: the deleted user's address and aliases are gone, also from
/// the log rows, which keep only the partner's side.
#[test]
fn deleting_a_user_blanks_their_aliases_in_the_log() {
    let (_dir, store) = temp_store();
    let conv = alice_and_bob(&store);
    let row = |sender: &str, recipient: &str, alias: &str| LogEntry {
        sent_at: 42,
        sender_id: Some(sender.into()),
        recipient_id: Some(recipient.into()),
        alias: alias.into(),
        subject: "Hello".into(),
    };
    store.log_message(&row("b", "a", &conv.alias_a)).unwrap();
    store.log_message(&row("a", "b", &conv.alias_b)).unwrap();
    assert!(store.delete_user("a").unwrap());
    let rows: Vec<(Option<String>, Option<String>, String)> = lock(&store.writer)
        .prepare("SELECT sender_id, recipient_id, alias FROM message_log ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        rows,
        vec![
            (Some("b".to_owned()), None, String::new()),
            (None, Some("b".to_owned()), conv.alias_b.clone()),
        ]
    );
}

#[test]
fn log_rows_hold_the_five_fields() {
    let (_dir, store) = store_of_a_and_b();
    let entry = LogEntry {
        sent_at: 42,
        sender_id: Some("b".into()),
        recipient_id: Some("a".into()),
        alias: "someali".into(),
        subject: "Hello".into(),
    };
    store.log_message(&entry).unwrap();
    assert_eq!(store.log_for_user("a").unwrap(), vec![entry]);
}

#[test]
fn reopening_keeps_data_and_schema_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("relay.db");
    let conv = {
        let store = Arc::new(Database::open(&path).unwrap());
        store
            .create_conversation(
                &person("a", "alice@a.example"),
                &person("b", "bob@b.example"),
                1,
            )
            .unwrap()
            .0
    };
    let store = Arc::new(Database::open(&path).unwrap());
    assert!(store.route(&conv.alias_a).unwrap().is_some());
    let version: i64 = lock(&store.writer)
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, schema_steps().len() as i64);
}

#[test]
fn schema_steps_count_from_one_and_comments_are_no_steps() {
    let numbers: Vec<u32> = numbered_steps(SCHEMA).iter().map(|(n, _)| *n).collect();
    let expected: Vec<u32> = (1..=numbers.len() as u32).collect();
    assert_eq!(numbers, expected);
    assert!(numbers.len() >= 3);
    let text = "-- step is a word here\n-- step 1\nA;\n-- step 2\nB;\n";
    assert_eq!(numbered_steps(text), vec![(1, "A;\n"), (2, "B;\n")]);
}

/// A database made before the steps were numbered has user_version 2 and
/// the tables; opening it adds the later steps and keeps its rows.
#[test]
fn a_database_from_before_numbered_steps_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("relay.db");
    {
        let conn = Connection::open(&path).unwrap();
        let steps = schema_steps();
        conn.execute_batch(&format!("{}\nPRAGMA user_version = 2;", steps[1]))
            .unwrap();
        conn.execute(
            "INSERT INTO users (id, email) VALUES ('a', 'alice@a.example')",
            [],
        )
        .unwrap();
    }
    let store = Arc::new(Database::open(&path).unwrap());
    let conn = lock(&store.writer);
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, schema_steps().len() as i64);
    let users: i64 = conn
        .query_row("SELECT count(*) FROM users", [], |r| r.get(0))
        .unwrap();
    assert_eq!(users, 1);
    let plan: String = conn
        .query_row(
            "EXPLAIN QUERY PLAN SELECT id FROM conversations WHERE user_a = 'a' OR user_b = 'a'",
            [],
            |r| r.get(3),
        )
        .unwrap();
    assert!(!plan.starts_with("SCAN conversations"), "{plan}");
}

#[test]
fn group_commit_writes_every_row_and_reports_each() {
    let (_dir, store) = store_of_a_and_b();
    let queue = LogQueue::start(Arc::clone(&store));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(async {
        let writes = (0..500).map(|i| {
            let queue = queue.clone();
            tokio::spawn(async move {
                queue
                    .reserve(LogEntry {
                        sent_at: i,
                        sender_id: Some("b".into()),
                        recipient_id: Some("a".into()),
                        alias: "someali".into(),
                        subject: format!("s{i}"),
                    })
                    .await
            })
        });
        for write in writes.collect::<Vec<_>>() {
            write.await.unwrap().unwrap();
        }
    });
    assert_eq!(store.log_for_user("a").unwrap().len(), 500);
    // A row the database refuses (unknown user: foreign key) is reported to its writer.
    let refused = runtime.block_on(queue.reserve(LogEntry {
        sent_at: 1,
        sender_id: Some("nobody".into()),
        recipient_id: None,
        alias: "x".into(),
        subject: "x".into(),
    }));
    assert!(refused.is_err());
}

/// A store holding users a and b in one conversation (log rows need both).
fn store_of_a_and_b() -> (tempfile::TempDir, Arc<Database>) {
    let (dir, store) = temp_store();
    store
        .create_conversation(
            &person("a", "alice@a.example"),
            &person("b", "bob@b.example"),
            1,
        )
        .unwrap();
    (dir, store)
}

fn log_row(subject: &str) -> LogEntry {
    LogEntry {
        sent_at: 1,
        sender_id: Some("b".into()),
        recipient_id: Some("a".into()),
        alias: "someali".into(),
        subject: subject.into(),
    }
}

#[test]
fn a_reserved_row_can_be_released_and_a_locked_store_answers_within_the_wait() {
    let (_dir, store) = store_of_a_and_b();
    let queue = LogQueue::start(Arc::clone(&store));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let row = runtime.block_on(queue.reserve(log_row("kept"))).unwrap();
    let released = runtime
        .block_on(queue.reserve(log_row("released")))
        .unwrap();
    runtime.block_on(queue.release(released)).unwrap();
    let subjects: Vec<String> = store
        .log_for_user("a")
        .unwrap()
        .into_iter()
        .map(|entry| entry.subject)
        .collect();
    assert_eq!(subjects, ["kept"]);
    assert_ne!(row, released);

    // Another process holds the write lock: every queued reservation is
    // refused within its wait, none written later.
    let other = Connection::open(store.path()).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let started = std::time::Instant::now();
    let outcomes = runtime.block_on(async {
        let mut waits = tokio::task::JoinSet::new();
        for i in 0..20 {
            let queue = queue.clone();
            waits.spawn(async move {
                queue
                    .reserve_within(log_row(&format!("locked {i}")), Duration::from_millis(300))
                    .await
            });
        }
        waits.join_all().await
    });
    let took = started.elapsed();
    assert!(outcomes.iter().all(Result::is_err), "{outcomes:?}");
    assert!(took < Duration::from_secs(3), "answered after {took:?}");
    assert!(store.probe_write(Duration::from_millis(100)).is_err());
    other.execute_batch("COMMIT").unwrap();
    store.probe_write(Duration::from_millis(100)).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(store.log_for_user("a").unwrap().len(), 1, "no late rows");
}

#[test]
fn a_checkpoint_blocked_by_a_reader_is_an_error_not_a_silent_success() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("busy.db");
    let writer = Connection::open(&path).unwrap();
    configure(&writer).unwrap();
    writer.busy_timeout(Duration::ZERO).unwrap();
    writer
        .execute_batch("CREATE TABLE t (x TEXT); INSERT INTO t VALUES ('old');")
        .unwrap();
    // A reader holds a snapshot that still needs the WAL's frames.
    let reader = Connection::open(&path).unwrap();
    reader.execute_batch("BEGIN").unwrap();
    let _: i64 = reader
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    writer.execute("DELETE FROM t", []).unwrap();
    assert!(matches!(
        checkpoint(&writer),
        Err(StoreError::CheckpointBusy)
    ));
    reader.execute_batch("COMMIT").unwrap();
    checkpoint(&writer).unwrap();
}

#[test]
fn durability_sets_sqlites_synchronous_mode() {
    let dir = tempfile::tempdir().unwrap();
    let mode = |store: &Database| -> i64 {
        lock(&store.writer)
            .query_row("PRAGMA synchronous", [], |row| row.get(0))
            .unwrap()
    };
    let normal = Arc::new(Database::open(&dir.path().join("normal.db")).unwrap());
    assert_eq!(mode(&normal), 1, "NORMAL by default");
    let full =
        Arc::new(Database::open_with(&dir.path().join("full.db"), Durability::Full).unwrap());
    assert_eq!(mode(&full), 2, "FULL when asked");
    let config: crate::config::Config = toml::from_str(
        "[smtp]\nlisten = \"127.0.0.1:2525\"\nhostname = \"mx.relay.test\"\nalias_domain = \"relay.test\"\n\
         [upstream]\nurl = \"outbox:o\"\n[store]\nsynchronous = \"full\"\n",
    )
    .unwrap();
    assert_eq!(config.store.synchronous, Durability::Full);
}

/// A database of version 3 that stored an address in its A-label form
/// (registered before IDNA mapping): migrating makes it the canonical
/// U-label form, so the sender check finds the partner; other rows stay.
#[test]
fn addresses_stored_in_a_label_form_are_made_canonical() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("relay.db");
    {
        let conn = Connection::open(&path).unwrap();
        let steps = schema_steps();
        conn.execute_batch(&format!(
            "{}\n{}\nPRAGMA user_version = 3;",
            steps[1], steps[2]
        ))
        .unwrap();
        conn.execute_batch(
            "INSERT INTO users (id, email) VALUES
                 ('carol', 'carol@xn--bcher-kva.example'),
                 ('bob', 'bob@b.example'),
                 ('odd', 'not an address')",
        )
        .unwrap();
    }
    let store = Arc::new(Database::open(&path).unwrap());
    let conn = lock(&store.writer);
    let email = |id: &str| -> String {
        conn.query_row("SELECT email FROM users WHERE id = ?1", [id], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(email("carol"), "carol@bücher.example");
    assert_eq!(email("bob"), "bob@b.example");
    assert_eq!(email("odd"), "not an address");
}

/// A user's export names each partner by the alias the user knows, in
/// conversations and log rows alike, and holds neither the partner's user
/// id nor their address; a row whose conversation is gone names no
/// partner. The operator's `log_for_user` keeps both ids.
#[test]
fn the_export_names_partners_only_by_alias() {
    let (_dir, store) = temp_store();
    let alice = person("u-alice", "alice@a.example");
    let (bob, carol) = (
        person("u-bob-partner", "bob.secret@b.example"),
        person("u-carol-partner", "carol.secret@c.example"),
    );
    let with_bob = store.create_conversation(&alice, &bob, 1).unwrap().0;
    let with_carol = store.create_conversation(&alice, &carol, 2).unwrap().0;
    let row = |sent_at, sender: &Participant, recipient: &Participant, alias: &str| LogEntry {
        sent_at,
        sender_id: Some(sender.user_id.as_str().into()),
        recipient_id: Some(recipient.user_id.as_str().into()),
        alias: alias.into(),
        subject: format!("subject {sent_at}"),
    };
    // Bob writes to Alice's alias, Alice to Bob's, Carol to Alice's.
    store
        .log_message(&row(10, &bob, &alice, &with_bob.alias_a))
        .unwrap();
    store
        .log_message(&row(11, &alice, &bob, &with_bob.alias_b))
        .unwrap();
    store
        .log_message(&row(12, &carol, &alice, &with_carol.alias_a))
        .unwrap();

    let export = store.export_user("u-alice").unwrap().unwrap();
    let partners: Vec<&str> = export
        .conversations
        .iter()
        .map(|c| c.partner_alias.as_str())
        .collect();
    assert_eq!(
        partners,
        [with_bob.alias_b.as_str(), with_carol.alias_b.as_str()]
    );
    let log: Vec<(Direction, Option<&str>)> = export
        .message_log
        .iter()
        .map(|m| (m.direction, m.partner_alias.as_deref()))
        .collect();
    assert_eq!(
        log,
        [
            (Direction::Received, Some(with_bob.alias_b.as_str())),
            (Direction::Sent, Some(with_bob.alias_b.as_str())),
            (Direction::Received, Some(with_carol.alias_b.as_str())),
        ]
    );
    let json = serde_json::to_string(&export).unwrap();
    for secret in [
        "u-bob-partner",
        "u-carol-partner",
        "bob.secret",
        "carol.secret",
        "partner_id",
    ] {
        assert!(!json.contains(secret), "{secret} in the export: {json}");
    }
    assert!(json.contains("\"direction\":\"received\""), "{json}");

    // Carol is deleted: her conversation is gone, her row names nobody.
    assert!(store.delete_user("u-carol-partner").unwrap());
    let export = store.export_user("u-alice").unwrap().unwrap();
    assert_eq!(export.conversations.len(), 1);
    assert_eq!(export.message_log[2].partner_alias, None);
    assert_eq!(export.message_log[2].subject, "subject 12");

    // The operator's disclosure keeps both ids.
    let disclosed = store.log_for_user("u-alice").unwrap();
    assert_eq!(disclosed[1].sender_id.as_deref(), Some("u-alice"));
    assert_eq!(disclosed[1].recipient_id.as_deref(), Some("u-bob-partner"));
}

#[test]
fn the_wal_a_long_reader_let_grow_is_given_back_once_it_ends() {
    let (_dir, store) = store_of_a_and_b();
    let limit: i64 = lock(&store.writer)
        .query_row("PRAGMA journal_size_limit", [], |row| row.get(0))
        .unwrap();
    assert_eq!(limit, WAL_SIZE_LIMIT as i64);
    // Another process's long read transaction pins the WAL.
    let reader = Connection::open(store.path()).unwrap();
    reader.execute_batch("BEGIN").unwrap();
    let _: i64 = reader
        .query_row("SELECT count(*) FROM message_log", [], |r| r.get(0))
        .unwrap();
    for i in 0..300 {
        store.log_message(&log_row(&format!("row {i}"))).unwrap();
    }
    let grown = store.wal_bytes();
    assert!(
        grown > 300 * 1024,
        "the WAL grew behind the reader: {grown}"
    );
    assert!(
        !store.truncate_wal().unwrap(),
        "blocked while the reader lasts"
    );
    reader.execute_batch("COMMIT").unwrap();
    assert!(store.truncate_wal().unwrap());
    assert_eq!(store.wal_bytes(), 0);
}

#[test]
fn a_bounce_may_quote_a_logged_subject_cut_as_notices_cut_it() {
    let (_dir, store) = store_of_a_and_b();
    let long = format!("{} end", "word ".repeat(60));
    for subject in ["Dinner on Friday", long.as_str()] {
        store.log_message(&log_row(subject)).unwrap();
    }
    let quoted = |subject: &str, since| {
        store
            .logged_subject_on_alias("someali", since, subject, 200)
            .unwrap()
    };
    assert!(quoted("Dinner on Friday", 0));
    assert!(!quoted("Dinner on Saturday", 0));
    assert!(
        !quoted("Dinner on Friday", 2),
        "older than the bounce address"
    );
    // Cut to 200 characters and trimmed, as bounce::read_report cuts it.
    let cut = crate::rewrite::clean_subject(&long, 200);
    assert!(cut.len() < long.len());
    assert!(quoted(&cut, 0));
    assert!(!store
        .logged_subject_on_alias("otheralias", 0, "Dinner on Friday", 200)
        .unwrap());
}

/// STORED.md lists every table and column the schema makes: a migration
/// that adds one fails here until the list says what it holds and why.
#[test]
fn stored_md_lists_every_table_and_column() {
    let (_dir, store) = temp_store();
    let listed = include_str!("../STORED.md");
    let conn = lock(&store.writer);
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(tables.len() >= 4, "{tables:?}");
    for table in &tables {
        let columns: Vec<String> = conn
            .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for column in columns {
            let row_names_it = listed.lines().any(|line| {
                line.starts_with(&format!("| `{table}` |"))
                    && line.split('|').nth(2).is_some_and(|cell| {
                        cell.split(',')
                            .any(|name| name.trim() == format!("`{column}`"))
                    })
            });
            assert!(row_names_it, "STORED.md has no row for {table}.{column}");
        }
    }
}

//! The command handler over the in-memory store: decisions, rejections, expected
//! versions, idempotent command ids and metadata.

use tidemark::{
    AppendOutcome, CommandError, CommandId, CommandOptions, EventStore, ExpectedVersion, HandlerConfig, Metadata,
    RecordedEvent, StreamVersion,
};
use uuid::Uuid;

mod support;
use support::*;

// ---------------------------------------------------------------------------------------
// Deciding and appending.

#[tokio::test]
async fn happy_path_appends_the_decided_events() {
    let h = handler();
    let id = wallet();
    let outcome = h.handle(&id, &open(50), &no_options()).await.unwrap();
    assert_eq!((outcome.previous_version, outcome.version), (StreamVersion(0), StreamVersion(2)));
    assert_eq!((outcome.duplicate, outcome.command_id), (false, None));
    assert_eq!(outcome.last_position, head(h.store()).await);
    let opened = WalletEvent::from(Opened { owner: "alice".into() });
    assert_eq!(decoded(&h, &id).await, vec![opened.clone(), credited(50)]);

    let outcome = h.handle(&id, &WalletCommand::Debit(20), &no_options()).await.unwrap();
    assert_eq!((outcome.previous_version, outcome.version), (StreamVersion(2), StreamVersion(3)));
    let loaded = h.load(&id).await.unwrap();
    assert_eq!(loaded.state, Wallet { open: true, owner: "alice".into(), balance: 30 });
    assert_eq!((loaded.version, loaded.stale_snapshot), (StreamVersion(3), false));
}

#[tokio::test]
async fn domain_rejection_appends_nothing() {
    let h = handler();
    let id = wallet();
    let rejected = h.handle(&id, &WalletCommand::Credit(5), &no_options()).await;
    assert!(matches!(rejected, Err(CommandError::Rejected(WalletError::NotOpen))));
    assert_eq!(h.store().stream_version(&id).await.unwrap(), StreamVersion::EMPTY);
    assert_eq!(head(h.store()).await, None);

    h.handle(&id, &open(10), &no_options()).await.unwrap();
    let before = head(h.store()).await;
    let command_id = CommandId::new();
    let options = CommandOptions::new().id(command_id);
    match h.handle(&id, &WalletCommand::Debit(11), &options).await {
        Err(CommandError::Rejected(e)) => {
            assert_eq!(e, WalletError::Insufficient { balance: 10, requested: 11 })
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!(h.store().stream_version(&id).await.unwrap(), StreamVersion(2));
    assert_eq!(head(h.store()).await, before);
    // A rejected command is not recorded: its id stays free.
    assert_eq!(h.store().command_outcome(command_id).await.unwrap(), None);
}

#[tokio::test]
async fn long_streams_load_in_pages() {
    let mut config = HandlerConfig::default();
    config.read_page = 2;
    let h = handler().with_config(config);
    let id = wallet();
    h.handle(&id, &open(1), &no_options()).await.unwrap();
    for cents in 2..=6 {
        h.handle(&id, &WalletCommand::Credit(cents), &no_options()).await.unwrap();
    }
    let loaded = h.load(&id).await.unwrap();
    assert_eq!((loaded.version, loaded.state.balance), (StreamVersion(7), 21));
}

// ---------------------------------------------------------------------------------------
// Optimistic concurrency.

#[tokio::test]
async fn stale_expected_version_is_a_conflict_with_exact_numbers() {
    let h = handler();
    let id = wallet();
    h.handle(&id, &open(10), &no_options()).await.unwrap();
    h.handle(&id, &WalletCommand::Credit(1), &no_options()).await.unwrap();
    let before = head(h.store()).await;

    let stale = CommandOptions::new().expect(ExpectedVersion::Exact(StreamVersion(2)));
    let result = h.handle(&id, &WalletCommand::Credit(5), &stale).await;
    expect_conflict(result, &id, ExpectedVersion::Exact(StreamVersion(2)), 3);
    let no_stream = CommandOptions::new().expect(ExpectedVersion::NoStream);
    let result = h.handle(&id, &WalletCommand::Credit(5), &no_stream).await;
    expect_conflict(result, &id, ExpectedVersion::NoStream, 3);
    assert_eq!(head(h.store()).await, before, "a conflict appends nothing");

    let fresh = CommandOptions::new().expect(ExpectedVersion::Exact(StreamVersion(3)));
    let outcome = h.handle(&id, &WalletCommand::Credit(5), &fresh).await.unwrap();
    assert_eq!(outcome.version, StreamVersion(4));

    let other = wallet();
    let exists = CommandOptions::new().expect(ExpectedVersion::StreamExists);
    let result = h.handle(&other, &open(1), &exists).await;
    expect_conflict(result, &other, ExpectedVersion::StreamExists, 0);
}

/// Delegates to the in-memory store but yields to the scheduler before every call, so
/// that tasks on one thread interleave between loading a stream and appending to it.
#[tokio::test]
async fn a_refused_create_reports_the_callers_expectation() {
    let h = handler();
    let id = wallet();
    h.handle(&id, &open(1), &no_options()).await.unwrap(); // v2
    let create = CommandOptions::new().expect(ExpectedVersion::NoStream);
    // Rejected by the domain on the assumed-empty state: reported as NoStream.
    let result = h.handle(&id, &WalletCommand::Credit(1), &create).await;
    expect_conflict(result, &id, ExpectedVersion::NoStream, 2);
    // Accepted by the domain, refused by the store: should read the same.
    let result = h.handle(&id, &open(1), &create).await;
    expect_conflict(result, &id, ExpectedVersion::NoStream, 2);
}

// ---------------------------------------------------------------------------------------
// Idempotent command ids.

#[tokio::test]
async fn same_command_id_twice_returns_the_first_outcome_and_appends_nothing() {
    let h = handler();
    let id = wallet();
    h.handle(&id, &open(10), &no_options()).await.unwrap();
    let options = CommandOptions::new().id(CommandId::new());
    let first = h.handle(&id, &WalletCommand::Credit(7), &options).await.unwrap();
    assert!(!first.duplicate);
    assert_eq!(first.command_id, options.command_id);
    let before = head(h.store()).await;

    let second = h.handle(&id, &WalletCommand::Credit(7), &options).await.unwrap();
    assert_eq!(second, AppendOutcome { duplicate: true, ..first.clone() });
    assert_eq!(head(h.store()).await, before);
    assert_eq!(h.load(&id).await.unwrap().state.balance, 17);
}

#[tokio::test]
async fn duplicate_is_recognised_even_when_the_domain_would_now_reject_it() {
    let h = handler();
    let id = wallet();
    let open_options = CommandOptions::new().id(CommandId::new());
    let opened = h.handle(&id, &open(30), &open_options).await.unwrap();
    let again = h.handle(&id, &open(30), &open_options).await.unwrap();
    assert_eq!(again, AppendOutcome { duplicate: true, ..opened });

    let drain = CommandOptions::new().id(CommandId::new());
    let drained = h.handle(&id, &WalletCommand::Debit(30), &drain).await.unwrap();
    let before = head(h.store()).await;
    // Replaying the drain would overdraw the wallet now; it is recognised instead.
    let again = h.handle(&id, &WalletCommand::Debit(30), &drain).await.unwrap();
    assert_eq!(again, AppendOutcome { duplicate: true, ..drained });
    assert_eq!(head(h.store()).await, before);
}

#[tokio::test]
async fn duplicate_is_recognised_when_its_expected_version_is_now_stale() {
    let h = handler();
    let id = wallet();
    let options = CommandOptions::new().id(CommandId::new()).expect(ExpectedVersion::NoStream);
    let first = h.handle(&id, &open(1), &options).await.unwrap();
    let again = h.handle(&id, &open(1), &options).await.unwrap();
    assert_eq!(again, AppendOutcome { duplicate: true, ..first });
}

#[tokio::test]
async fn a_command_id_reused_on_another_stream_returns_the_first_outcome() {
    let h = handler();
    let (a, b) = (wallet(), wallet());
    let options = CommandOptions::new().id(CommandId::new());
    let first = h.handle(&a, &open(5), &options).await.unwrap();
    let again = h.handle(&b, &open(5), &options).await.unwrap();
    assert_eq!(again, AppendOutcome { duplicate: true, ..first });
    assert_eq!(h.store().stream_version(&b).await.unwrap(), StreamVersion::EMPTY);
}

// ---------------------------------------------------------------------------------------
// Metadata.

#[tokio::test]
async fn metadata_is_copied_onto_every_event_with_ids_defaulting_to_the_command() {
    let h = handler();
    let id = wallet();
    let command_id = CommandId::new();
    let metadata =
        Metadata::new().with_user("bob").with_tenant("acme").with_header("ip", "10.0.0.1").with_header("via", "api");
    let options = CommandOptions::new().id(command_id).metadata(metadata.clone());
    h.handle(&id, &open(5), &options).await.unwrap();
    let stored = events(h.store(), &id).await;
    assert_eq!(stored.len(), 2);
    let expected = metadata.with_correlation_id(command_id.0).with_causation_id(command_id.0);
    for event in &stored {
        assert_eq!(event.metadata, expected);
    }
}

#[tokio::test]
async fn a_given_correlation_id_is_kept() {
    let h = handler();
    let id = wallet();
    let (command_id, correlation) = (CommandId::new(), Uuid::now_v7());
    let options = CommandOptions::new().id(command_id).metadata(Metadata::new().with_correlation_id(correlation));
    h.handle(&id, &open(5), &options).await.unwrap();
    for event in events(h.store(), &id).await {
        assert_eq!(event.metadata.correlation_id, Some(correlation));
        assert_eq!(event.metadata.causation_id, Some(command_id.0));
    }
}

#[tokio::test]
async fn without_a_command_id_each_command_gets_its_own_origin_id() {
    let h = handler();
    let id = wallet();
    h.handle(&id, &open(5), &no_options()).await.unwrap();
    h.handle(&id, &WalletCommand::Credit(1), &no_options()).await.unwrap();
    let stored = events(h.store(), &id).await;
    let origin = |e: &RecordedEvent| (e.metadata.correlation_id, e.metadata.causation_id);
    let (first, second, third) = (origin(&stored[0]), origin(&stored[1]), origin(&stored[2]));
    assert!(first.0.is_some() && first.0 == first.1, "correlation = causation = the command's id");
    assert_eq!(first, second, "events of one command share it");
    assert_ne!(first, third, "another command gets another id");
}

// ---------------------------------------------------------------------------------------
// Deleted streams.

#[tokio::test]
async fn a_deleted_stream_is_neither_loaded_nor_appended_to() {
    let h = handler();
    let id = wallet();
    h.handle(&id, &open(50), &no_options()).await.unwrap();
    let tombstone = h.store().tombstone(&id, ExpectedVersion::Exact(StreamVersion(2))).await.unwrap();
    assert_eq!(tombstone.version, StreamVersion(3));
    let loaded = h.load(&id).await;
    assert!(
        matches!(loaded, Err(tidemark::Error::StreamDeleted { ref stream, version: StreamVersion(3) }) if *stream == id),
        "{loaded:?}"
    );
    // The handler's cached state is from before the tombstone: the store refuses the append.
    let debit = h.handle(&id, &WalletCommand::Debit(20), &no_options()).await;
    assert!(matches!(debit, Err(CommandError::Store(tidemark::Error::StreamDeleted { .. }))), "{debit:?}");
    // And a command decided on the store's state (no cache entry left) is refused at the load.
    let again = h.handle(&id, &WalletCommand::Debit(20), &no_options()).await;
    assert!(matches!(again, Err(CommandError::Store(tidemark::Error::StreamDeleted { .. }))), "{again:?}");
    assert_eq!(h.store().stream_version(&id).await.unwrap(), StreamVersion(3));
}

//! The handler's state cache with another writer on the same store: a stale cached state
//! must never change a command's result.

use tidemark::{AppendOutcome, CommandHandler, CommandId, CommandOptions, ExpectedVersion, InMemoryEventStore};

mod support;
use support::*;

fn caching(store: &InMemoryEventStore) -> Handler {
    CommandHandler::new(store.clone(), codec()).with_cache(std::num::NonZeroUsize::new(8).unwrap())
}

fn plain(store: &InMemoryEventStore) -> Handler {
    CommandHandler::new(store.clone(), codec())
}

#[tokio::test]
async fn a_stale_cached_state_never_causes_a_wrong_rejection() {
    let store = InMemoryEventStore::new();
    let (a, b) = (caching(&store), plain(&store));
    let id = wallet();
    a.handle(&id, &open(0), &no_options()).await.unwrap(); // a caches balance 0
    b.handle(&id, &WalletCommand::Credit(100), &no_options()).await.unwrap();
    // The wallet holds 100: the debit must go through.
    let result = a.handle(&id, &WalletCommand::Debit(50), &no_options()).await;
    assert_eq!(result.map(|o| o.version.0).map_err(|e| e.to_string()), Ok(3));
}

#[tokio::test]
async fn a_refused_create_does_not_leave_an_empty_state_in_the_cache() {
    let store = InMemoryEventStore::new();
    let (a, b) = (caching(&store), plain(&store));
    let id = wallet();
    b.handle(&id, &open(10), &no_options()).await.unwrap(); // v2
    let create = CommandOptions::new().expect(ExpectedVersion::NoStream);
    let result = a.handle(&id, &WalletCommand::Credit(1), &create).await;
    expect_conflict(result, &id, ExpectedVersion::NoStream, 2);
    // The wallet is open: a credit without expectations goes through.
    let result = a.handle(&id, &WalletCommand::Credit(1), &no_options()).await;
    assert_eq!(result.map(|o| o.version.0).map_err(|e| e.to_string()), Ok(3));
}

#[tokio::test]
async fn a_stale_cached_state_does_not_turn_a_met_expectation_into_a_conflict() {
    let store = InMemoryEventStore::new();
    let (a, b) = (caching(&store), plain(&store));
    let id = wallet();
    a.handle(&id, &open(1), &no_options()).await.unwrap(); // a caches v2
    b.handle(&id, &WalletCommand::Credit(1), &no_options()).await.unwrap(); // v3
    let exists = CommandOptions::new().expect(ExpectedVersion::StreamExists);
    let result = a.handle(&id, &WalletCommand::Credit(1), &exists).await;
    assert_eq!(result.map(|o| o.version.0).map_err(|e| e.to_string()), Ok(4));
}

#[tokio::test]
async fn a_cached_state_still_recognises_duplicates() {
    let store = InMemoryEventStore::new();
    let (a, b) = (caching(&store), plain(&store));
    let id = wallet();
    a.handle(&id, &open(10), &no_options()).await.unwrap();
    let drain = CommandOptions::new().id(CommandId::new());
    let first = a.handle(&id, &WalletCommand::Debit(10), &drain).await.unwrap();
    b.handle(&id, &WalletCommand::Credit(5), &no_options()).await.unwrap();
    let again = a.handle(&id, &WalletCommand::Debit(10), &drain).await.unwrap();
    assert_eq!(again, AppendOutcome { duplicate: true, ..first });
    assert_eq!(plain(&store).load(&id).await.unwrap().state.balance, 5);
}

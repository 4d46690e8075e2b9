//! The command handler's state cache: it saves loads, and a stale cached state never
//! leads to a wrong decision.

use std::num::NonZeroUsize;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

mod support;
use support::Observed;
use tidemark::{
    Aggregate, CommandError, CommandHandler, CommandOptions, EventCodec, EventStore, ExpectedVersion, Result, StreamId,
    StreamVersion,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Added {
    n: u32,
}

tidemark::domain_events! {
    #[derive(Debug, Clone, PartialEq)]
    enum TallyEvent { Added(Added) = ("TallyAdded", 1) }
}

#[derive(Debug, PartialEq, thiserror::Error)]
#[error("a tally stops at 10")]
struct Full;

/// Accepts additions up to a total of 10: a decision that depends on the whole history.
#[derive(Debug, Default)]
struct Tally(u32);

impl Aggregate for Tally {
    const CATEGORY: &'static str = "tally";
    type Command = u32;
    type Event = TallyEvent;
    type Error = Full;

    fn decide(&self, n: &u32) -> Result<Vec<TallyEvent>, Full> {
        if self.0 + n > 10 {
            return Err(Full);
        }
        Ok(vec![Added { n: *n }.into()])
    }

    fn evolve(&mut self, TallyEvent::Added(e): &TallyEvent) {
        self.0 += e.n;
    }
}

fn handler(store: Observed) -> CommandHandler<Tally, Observed> {
    let codec = Arc::new(EventCodec::without_upcasters().expect("codec"));
    CommandHandler::new(store, codec).with_cache(NonZeroUsize::new(16).expect("non-zero"))
}

fn tally() -> StreamId {
    StreamId::for_entity("tally", uuid::Uuid::now_v7()).expect("id")
}

#[tokio::test]
async fn a_cached_stream_is_not_read_again() {
    let store = Observed::default();
    let h = handler(store.clone());
    let id = tally();
    for _ in 0..5 {
        h.handle(&id, &1, &CommandOptions::new()).await.expect("command");
    }
    assert_eq!(store.reads.load(Ordering::SeqCst), 1, "only the first command loads");
    assert_eq!(store.stream_version(&id).await.expect("version"), StreamVersion(5));
}

#[tokio::test]
async fn a_state_made_stale_by_another_writer_is_reloaded_before_deciding() {
    let store = Observed::default();
    let (a, b) = (handler(store.clone()), handler(store.clone()));
    let id = tally();
    a.handle(&id, &4, &CommandOptions::new()).await.expect("a caches 4");
    b.handle(&id, &5, &CommandOptions::new()).await.expect("b loads 4, appends 5");
    // a's cached state says 4; the stream says 9. Adding 3 must be refused (12 > 10).
    let result = a.handle(&id, &3, &CommandOptions::new()).await;
    assert!(matches!(result, Err(CommandError::Rejected(Full))), "{result:?}");
    a.handle(&id, &1, &CommandOptions::new()).await.expect("9 + 1 fits");
    assert_eq!(store.stream_version(&id).await.expect("version"), StreamVersion(3));
}

#[tokio::test]
async fn an_expected_version_the_cache_does_not_match_is_checked_against_the_store() {
    let store = Observed::default();
    let (a, b) = (handler(store.clone()), handler(store.clone()));
    let id = tally();
    a.handle(&id, &1, &CommandOptions::new()).await.expect("a caches v1");
    b.handle(&id, &1, &CommandOptions::new()).await.expect("b appends v2");
    let exact = CommandOptions::new().expect(ExpectedVersion::Exact(StreamVersion(2)));
    let outcome = a.handle(&id, &1, &exact).await.expect("the stream is at 2, as expected");
    assert_eq!(outcome.version, StreamVersion(3));
}

#[tokio::test]
async fn a_create_on_an_existing_stream_is_a_conflict_not_a_rejection() {
    let h = handler(Observed::default());
    let id = tally();
    h.handle(&id, &10, &CommandOptions::new()).await.expect("full tally");
    let create = CommandOptions::new().expect(ExpectedVersion::NoStream);
    match h.handle(&id, &1, &create).await {
        Err(CommandError::Store(tidemark::Error::Conflict { actual, .. })) => assert_eq!(actual, StreamVersion(1)),
        other => panic!("expected a conflict, got {other:?}"),
    }
}

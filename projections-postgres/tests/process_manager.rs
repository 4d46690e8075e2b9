//! A process manager (a projection that issues commands) issues each command once, although
//! every event reaches it again and again: its batches fail once after issuing their
//! commands (a crash between the command's append and the batch's commit), and its first
//! runner "dies" after each commit, before its ack.

mod support;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tidemark::{
    Aggregate, CommandHandler, CommandOptions, Envelope, EventCodec, EventId, EventStore, StreamId, StreamVersion,
};
use tidemark_nats::RelayConfig;
use tidemark_postgres::PgEventStore;
use tidemark_projections::{ApplyError, Projection, ProjectionRunner, RunnerConfig};
use tidemark_projections_postgres::PgReadModels;

use support::nats::{spawn_relay, spawn_runner, Bench};
use support::{append_rounds, read_log, wait_until, LedgerEvent};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ReceiptIssued {
    amount: i64,
}

tidemark::domain_events! {
    #[derive(Debug, Clone, PartialEq)]
    enum ReceiptEvent { Issued(ReceiptIssued) = ("ReceiptIssued", 1) }
}

/// Receipts of an account: every `Issue` command records one, whatever came before, so
/// only the command id keeps a redelivery from issuing a second.
#[derive(Debug, Default)]
struct Receipts;

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

impl Aggregate for Receipts {
    const CATEGORY: &'static str = "receipt";
    type Command = i64;
    type Event = ReceiptEvent;
    type Error = Never;

    fn decide(&self, amount: &i64) -> Result<Vec<ReceiptEvent>, Never> {
        Ok(vec![ReceiptIssued { amount: *amount }.into()])
    }

    fn evolve(&mut self, _: &ReceiptEvent) {}
}

/// Deposited → issue a receipt, with a command id derived from the deposit's event id.
/// The first time it meets an event it fails right after issuing the command.
struct IssueReceipts {
    codec: EventCodec<LedgerEvent>,
    receipts: CommandHandler<Receipts, PgEventStore>,
    met: Mutex<HashSet<EventId>>,
}

fn receipt_stream(account: &StreamId) -> StreamId {
    StreamId::new(format!("receipt-{}", account.as_str())).expect("stream id")
}

impl Projection<PgReadModels> for IssueReceipts {
    type Event = LedgerEvent;

    fn name(&self) -> &str {
        "issue-receipts"
    }

    fn codec(&self) -> &EventCodec<LedgerEvent> {
        &self.codec
    }

    /// Its commands are not undone with the batch.
    fn undoable(&self) -> bool {
        false
    }

    async fn apply(
        &self,
        _tx: &mut tidemark_projections_postgres::PgTx,
        event: &Envelope<LedgerEvent>,
    ) -> Result<(), ApplyError> {
        if let LedgerEvent::Deposited(d) = &event.event {
            let options = CommandOptions::reacting_to(event, "issue-receipt");
            self.receipts.handle(&receipt_stream(&event.stream_id), &d.amount, &options).await?;
            if self.met.lock().expect("lock").insert(event.event_id) {
                return Err("crashed before the batch committed".into());
            }
        }
        Ok(())
    }
}

fn runner<F: tidemark_projections::Feed>(
    bench: &Bench,
    feed: F,
) -> ProjectionRunner<IssueReceipts, PgReadModels, PgEventStore, F> {
    let codec = Arc::new(EventCodec::<ReceiptEvent>::without_upcasters().expect("codec"));
    let projection = IssueReceipts {
        codec: EventCodec::without_upcasters().expect("codec"),
        receipts: CommandHandler::new(bench.store.clone(), codec),
        met: Mutex::default(),
    };
    // Failing batches are retried (and never isolated into the dead letters).
    let config = RunnerConfig::default()
        .backoff(Duration::from_millis(1), Duration::from_millis(5))
        .poison(tidemark_projections::PoisonPolicy::Halt, 1);
    ProjectionRunner::new(projection, bench.read_models.clone(), bench.store.clone(), feed, config).expect("runner")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_manager_issues_each_command_once_under_redelivery() {
    let bench = Bench::new(2).await;
    let relay = bench.relay(RelayConfig::new("main")).await;
    let (stop_relay, relay_task) = spawn_relay(&relay);
    let first = runner(&bench, bench.feed());
    first.set_up().await.expect("set up");
    let (_, first_task) = spawn_runner(&first);
    let outcomes = append_rounds(&bench.store, 8, 2, 5).await;
    for outcome in &outcomes {
        first.wait_for_append(outcome, support::DEADLINE).await.expect("caught up");
    }
    first_task.abort();
    let _ = first_task.await;

    // Everything comes again to the next runner (its subscriptions ignore the recorded
    // cursor); every command it issues is a repeat.
    let second = runner(&bench, support::nats::FromStart(bench.feed()));
    let (stop_second, second_task) = spawn_runner(&second);
    let accounts: Vec<StreamId> = (0..8).map(support::stream).collect();
    let deposits = |log: &[tidemark::RecordedEvent], account: &StreamId| -> Vec<i64> {
        log.iter()
            .filter(|e| &e.stream_id == account && e.event_type == "Deposited")
            .map(|e| {
                serde_json::from_str::<serde_json::Value>(e.payload.get()).expect("json")["amount"]
                    .as_i64()
                    .expect("amount")
            })
            .collect()
    };
    let head = bench.settled_head().await;
    let log = read_log(&bench.store, head).await;
    let ledger_events = log.iter().filter(|e| e.stream_id.category() == "account").count() as u64;
    wait_until("the second runner has had every ledger event again", || async {
        second.status().totals.duplicates >= ledger_events
    })
    .await;
    for account in &accounts {
        let receipts = bench.store.read_stream(&receipt_stream(account), StreamVersion(1), 1000).await.expect("read");
        let amounts: Vec<i64> = receipts
            .iter()
            .map(|e| {
                serde_json::from_str::<serde_json::Value>(e.payload.get()).expect("json")["amount"]
                    .as_i64()
                    .expect("amount")
            })
            .collect();
        assert_eq!(amounts, deposits(&log, account), "one receipt per deposit of {account}, in order");
        assert!(receipts.iter().all(|r| r.metadata.causation_id.is_some()), "receipts name their cause");
        assert!(!receipts.is_empty());
    }

    stop_second.cancel();
    second_task.await.expect("joined").expect("clean stop");
    stop_relay.cancel();
    relay_task.await.expect("joined").expect("clean stop");
    bench.delete_stream().await;
}

//! Step 4: a process manager, a projection that issues commands: every account opened gets
//! a welcome bonus. Its command id is derived from the event's id, so an event delivered
//! again (a retry after a crash, a redelivery) issues the same command, which the store
//! answers with the first outcome: the bonus is paid once.
//!
//! `cargo run -p tidemark-examples --example process_manager`

use std::sync::Arc;
use std::time::Duration;

use tidemark::{Aggregate, CommandHandler, CommandOptions, Envelope, EventCodec, LogPosition, StreamId};
use tidemark_examples::account::{Account, AccountCommand, AccountEvent};
use tidemark_examples::{database_url, drop_schemas, unique, BoxError};
use tidemark_postgres::{PgEventStore, PgStoreConfig};
use tidemark_projections::{ApplyError, InProcessBus, PoisonPolicy, Projection, ProjectionRunner, RunnerConfig};
use tidemark_projections_postgres::{PgReadModels, PgTx};
use tokio_util::sync::CancellationToken;

// ANCHOR: process
struct WelcomeBonus {
    codec: EventCodec<AccountEvent>,
    accounts: Arc<CommandHandler<Account, PgEventStore>>,
}

impl Projection<PgReadModels> for WelcomeBonus {
    type Event = AccountEvent;

    fn name(&self) -> &str {
        "welcome-bonus"
    }

    fn codec(&self) -> &EventCodec<AccountEvent> {
        &self.codec
    }

    // Its commands are not undone with the batch's transaction: the runner checks every
    // batch against what was already applied before calling `apply`.
    fn undoable(&self) -> bool {
        false
    }

    async fn apply(&self, _tx: &mut PgTx, event: &Envelope<AccountEvent>) -> Result<(), ApplyError> {
        if let AccountEvent::Opened(_) = &event.event {
            let options = CommandOptions::reacting_to(event, "welcome-bonus");
            self.accounts.handle(&event.stream_id, &AccountCommand::Deposit { cents: 1_000 }, &options).await?;
        }
        Ok(())
    }
}
// ANCHOR_END: process

async fn run() -> Result<(), BoxError> {
    let schema = unique("ex_process");
    let store = PgEventStore::connect(&database_url(), PgStoreConfig::default().schema(&schema)).await?;
    let outcome = pay_bonuses(&store).await;
    drop_schemas(store.pool(), &schema).await?;
    outcome
}

async fn pay_bonuses(store: &PgEventStore) -> Result<(), BoxError> {
    store.migrate().await?;
    let read_models = PgReadModels::new(store);
    read_models.migrate().await?;
    let accounts =
        Arc::new(CommandHandler::<Account, _>::new(store.clone(), Arc::new(EventCodec::without_upcasters()?)));

    // ANCHOR: run
    let bonus = WelcomeBonus { codec: EventCodec::without_upcasters()?, accounts: accounts.clone() };
    // A bonus that keeps failing halts its partition (retried with backoff) rather than
    // being parked: no account goes without it.
    let config = RunnerConfig::default().poison(PoisonPolicy::Halt, 5);
    let bus = InProcessBus::new(4)?;
    let runner = ProjectionRunner::new(bonus, read_models, store.clone(), bus.clone(), config)?;
    // ANCHOR_END: run

    let shutdown = CancellationToken::new();
    let pump = tokio::spawn({
        let (bus, store, stop) = (bus.clone(), store.clone(), shutdown.clone());
        async move { bus.pump(&store, LogPosition::START, stop).await }
    });
    let running = tokio::spawn({
        let (runner, stop) = (runner.clone(), shutdown.clone());
        async move { runner.run(stop).await }
    });

    // ANCHOR: check
    let id = StreamId::for_entity(Account::CATEGORY, 1)?;
    let opened = accounts.handle(&id, &AccountCommand::Open { owner: "ada".into() }, &CommandOptions::new()).await?;
    // Once the process manager has taken the opening in, its deposit is stored.
    runner.wait_for_append(&opened, Duration::from_secs(10)).await?;
    let account = accounts.load(&id).await?;
    println!("{id} holds {} cents after its welcome bonus", account.state.balance());
    assert_eq!(account.state.balance(), 1_000);
    // ANCHOR_END: check

    shutdown.cancel();
    pump.await??;
    running.await??;
    Ok(())
}

tidemark_examples::example_main!(run);

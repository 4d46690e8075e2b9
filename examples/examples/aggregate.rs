//! Step 1: an aggregate decides on commands; given/when/then tests it without a runtime,
//! and a command handler runs it on a store (here the in-memory one).
//!
//! `cargo run -p tidemark-examples --example aggregate`

use std::sync::Arc;

use tidemark::{
    Aggregate, AggregateTest, CommandHandler, CommandId, CommandOptions, EventCodec, InMemoryEventStore, StreamId,
};
use tidemark_examples::account::{Account, AccountCommand, AccountError, AccountEvent, Deposited, Opened, Withdrawn};
use tidemark_examples::BoxError;

// ANCHOR: test
fn opened() -> AccountEvent {
    Opened { owner: "ada".into() }.into()
}

fn check_the_rules() {
    AggregateTest::<Account>::given([opened(), Deposited { cents: 500 }.into()])
        .when(AccountCommand::Withdraw { cents: 200 })
        .then([Withdrawn { cents: 200 }.into()]);

    AggregateTest::<Account>::given([opened(), Deposited { cents: 100 }.into()])
        .when(AccountCommand::Withdraw { cents: 200 })
        .then_error(AccountError::InsufficientFunds { balance: 100, asked: 200 });

    AggregateTest::<Account>::given_no_events()
        .when(AccountCommand::Deposit { cents: 100 })
        .then_error(AccountError::NotOpen);
}
// ANCHOR_END: test

// ANCHOR: handle
async fn run() -> Result<(), BoxError> {
    check_the_rules();

    let store = InMemoryEventStore::new();
    let accounts = CommandHandler::<Account, _>::new(store, Arc::new(EventCodec::without_upcasters()?));

    let id = StreamId::for_entity(Account::CATEGORY, 7)?; // "account-7"
    accounts.handle(&id, &AccountCommand::Open { owner: "ada".into() }, &CommandOptions::new()).await?;
    accounts.handle(&id, &AccountCommand::Deposit { cents: 500 }, &CommandOptions::new()).await?;

    // A command id makes a retry harmless: the second call appends nothing.
    let once = CommandOptions::new().id(CommandId::new());
    let first = accounts.handle(&id, &AccountCommand::Withdraw { cents: 200 }, &once).await?;
    let again = accounts.handle(&id, &AccountCommand::Withdraw { cents: 200 }, &once).await?;
    assert!(again.duplicate && again.version == first.version);

    let loaded = accounts.load(&id).await?;
    println!("{id} is at version {} with {} cents", loaded.version, loaded.state.balance());
    assert_eq!(loaded.state.balance(), 300);
    Ok(())
}
// ANCHOR_END: handle

tidemark_examples::example_main!(run);

#[cfg(test)]
mod tests {
    #[test]
    fn the_rules_hold() {
        super::check_the_rules();
    }
}

//! A bank account: the sample aggregate shared by the cross-crate tests.
//!
//! Rules: an account is opened once, takes only positive amounts, is never overdrawn,
//! and closes only when empty; a closed account takes nothing more.

use std::sync::Arc;

use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use tidemark::{Aggregate, EventCodec, StreamId};
use uuid::Uuid;

/// The account was opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Opened {
    /// Who owns it.
    pub owner: String,
}

/// Money came in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deposited {
    /// How much, in cents.
    pub cents: i64,
}

/// Money went out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Withdrawn {
    /// How much, in cents.
    pub cents: i64,
}

/// The account was closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Closed {}

tidemark::domain_events! {
    /// The events of a bank account.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum BankEvent {
        /// See [`Opened`].
        Opened(Opened) = ("AccountOpened", 1),
        /// See [`Deposited`].
        Deposited(Deposited) = ("MoneyDeposited", 1),
        /// See [`Withdrawn`].
        Withdrawn(Withdrawn) = ("MoneyWithdrawn", 1),
        /// See [`Closed`].
        Closed(Closed) = ("AccountClosed", 1),
    }
}

/// What an account can be asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BankCommand {
    /// Opens the account, with an optional first deposit (two events then).
    Open {
        /// The owner.
        owner: String,
        /// A first deposit in cents; 0 for none.
        initial_cents: i64,
    },
    /// Deposits money.
    Deposit {
        /// In cents.
        cents: i64,
    },
    /// Withdraws money.
    Withdraw {
        /// In cents.
        cents: i64,
    },
    /// Closes an empty account.
    Close,
}

/// Why an account refuses a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BankError {
    /// Opening an account twice.
    #[error("the account is already open")]
    AlreadyOpen,
    /// Using an account that was never opened.
    #[error("the account is not open")]
    NotOpen,
    /// Using a closed account.
    #[error("the account is closed")]
    Closed,
    /// A zero or negative amount.
    #[error("amounts are positive")]
    NotPositive,
    /// Withdrawing more than the balance.
    #[error("balance {balance} is below {requested}")]
    InsufficientFunds {
        /// The balance, in cents.
        balance: i64,
        /// The amount asked for, in cents.
        requested: i64,
    },
    /// Closing an account with money in it.
    #[error("the balance is {0}, not zero")]
    NotEmpty(i64),
}

/// Where an account is in its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    /// Not opened yet.
    #[default]
    New,
    /// Open.
    Open,
    /// Closed for good.
    Closed,
}

/// A bank account's state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Where it is in its life.
    pub status: Status,
    /// The owner, once opened.
    pub owner: Option<String>,
    /// The balance, in cents.
    pub balance: i64,
}

impl Account {
    fn require_open(&self) -> Result<(), BankError> {
        match self.status {
            Status::New => Err(BankError::NotOpen),
            Status::Open => Ok(()),
            Status::Closed => Err(BankError::Closed),
        }
    }
}

fn positive(cents: i64) -> Result<(), BankError> {
    if cents > 0 {
        Ok(())
    } else {
        Err(BankError::NotPositive)
    }
}

impl Aggregate for Account {
    const CATEGORY: &'static str = "account";
    type Command = BankCommand;
    type Event = BankEvent;
    type Error = BankError;

    fn decide(&self, command: &BankCommand) -> Result<Vec<BankEvent>, BankError> {
        match command {
            BankCommand::Open { owner, initial_cents } => {
                if self.status != Status::New {
                    return Err(BankError::AlreadyOpen);
                }
                let mut events = vec![Opened { owner: owner.clone() }.into()];
                if *initial_cents != 0 {
                    positive(*initial_cents)?;
                    events.push(Deposited { cents: *initial_cents }.into());
                }
                Ok(events)
            }
            BankCommand::Deposit { cents } => {
                self.require_open()?;
                positive(*cents)?;
                Ok(vec![Deposited { cents: *cents }.into()])
            }
            BankCommand::Withdraw { cents } => {
                self.require_open()?;
                positive(*cents)?;
                if *cents > self.balance {
                    let (balance, requested) = (self.balance, *cents);
                    return Err(BankError::InsufficientFunds { balance, requested });
                }
                Ok(vec![Withdrawn { cents: *cents }.into()])
            }
            BankCommand::Close => {
                self.require_open()?;
                if self.balance != 0 {
                    return Err(BankError::NotEmpty(self.balance));
                }
                Ok(vec![Closed {}.into()])
            }
        }
    }

    fn evolve(&mut self, event: &BankEvent) {
        match event {
            BankEvent::Opened(e) => {
                self.status = Status::Open;
                self.owner = Some(e.owner.clone());
            }
            BankEvent::Deposited(e) => self.balance += e.cents,
            BankEvent::Withdrawn(e) => self.balance -= e.cents,
            BankEvent::Closed(_) => self.status = Status::Closed,
        }
    }
}

/// The codec of bank events (no upcasters: every type is at v1).
pub fn codec() -> Arc<EventCodec<BankEvent>> {
    Arc::new(EventCodec::without_upcasters().expect("bank events are all at v1"))
}

/// A fresh account stream id, `account-<tag>_<uuid>`.
pub fn account_id(tag: &str) -> StreamId {
    StreamId::for_entity(Account::CATEGORY, format!("{tag}_{}", Uuid::now_v7().simple()))
        .expect("tags are letters and digits")
}

/// Any bank command, valid or not: mostly plausible ones, so that sequences get far,
/// with zero, negative and too large amounts mixed in so that every rule is hit.
pub fn any_command() -> impl Strategy<Value = BankCommand> {
    let amount = || prop_oneof![9 => 1i64..100, 1 => -5i64..=0];
    prop_oneof![
        2 => (prop::sample::select(vec!["ann", "bo"]), prop_oneof![0i64..50, Just(0)]).prop_map(
            |(owner, initial_cents)| BankCommand::Open { owner: owner.to_owned(), initial_cents }
        ),
        4 => amount().prop_map(|cents| BankCommand::Deposit { cents }),
        3 => amount().prop_map(|cents| BankCommand::Withdraw { cents }),
        1 => Just(BankCommand::Close),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidemark::AggregateTest;

    fn opened() -> BankEvent {
        Opened { owner: "ann".into() }.into()
    }

    #[test]
    fn opening_with_a_first_deposit_records_two_events() {
        let open = BankCommand::Open { owner: "ann".into(), initial_cents: 5 };
        let state =
            AggregateTest::<Account>::given_no_events().when(open).then([opened(), Deposited { cents: 5 }.into()]);
        assert_eq!(state.balance, 5);
    }

    #[test]
    fn accounts_are_never_overdrawn() {
        AggregateTest::<Account>::given([opened(), Deposited { cents: 5 }.into()])
            .when(BankCommand::Withdraw { cents: 6 })
            .then_error(BankError::InsufficientFunds { balance: 5, requested: 6 });
    }

    #[test]
    fn only_empty_accounts_close_and_closed_accounts_take_nothing() {
        AggregateTest::<Account>::given([opened(), Deposited { cents: 5 }.into()])
            .when(BankCommand::Close)
            .then_error(BankError::NotEmpty(5));
        AggregateTest::<Account>::given([opened(), Closed {}.into()])
            .when(BankCommand::Deposit { cents: 1 })
            .then_error(BankError::Closed);
        AggregateTest::<Account>::given([opened()])
            .when(BankCommand::Open { owner: "bo".into(), initial_cents: 0 })
            .then_error(BankError::AlreadyOpen);
    }
}

//! The domain every example uses: a bank account.

// ANCHOR: events
use serde::{Deserialize, Serialize};
use tidemark::Aggregate;

/// An account was opened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Opened {
    /// Who owns it.
    pub owner: String,
}

/// Money was put in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deposited {
    /// How much, in cents.
    pub cents: i64,
}

/// Money was taken out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Withdrawn {
    /// How much, in cents.
    pub cents: i64,
}

tidemark::domain_events! {
    /// What happens to an account: each variant has a stored name and a schema version.
    #[derive(Debug, Clone, PartialEq)]
    pub enum AccountEvent {
        /// See [`Opened`].
        Opened(Opened) = ("AccountOpened", 1),
        /// See [`Deposited`].
        Deposited(Deposited) = ("MoneyDeposited", 1),
        /// See [`Withdrawn`].
        Withdrawn(Withdrawn) = ("MoneyWithdrawn", 1),
    }
}
// ANCHOR_END: events

// ANCHOR: aggregate
/// What an account can be asked.
#[derive(Debug, Clone, PartialEq)]
pub enum AccountCommand {
    /// Open it.
    Open {
        /// Who owns it.
        owner: String,
    },
    /// Put money in.
    Deposit {
        /// How much, in cents.
        cents: i64,
    },
    /// Take money out, never below zero.
    Withdraw {
        /// How much, in cents.
        cents: i64,
    },
}

/// Why an account refused a command.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AccountError {
    /// Opened twice.
    #[error("the account is already open")]
    AlreadyOpen,
    /// Used before it was opened.
    #[error("the account is not open")]
    NotOpen,
    /// An amount of zero or less.
    #[error("amounts are positive, got {0}")]
    NotPositive(i64),
    /// A withdrawal above the balance.
    #[error("insufficient funds: balance {balance}, asked {asked}")]
    InsufficientFunds {
        /// The balance, in cents.
        balance: i64,
        /// The amount asked, in cents.
        asked: i64,
    },
}

/// A bank account: its state is rebuilt from its events, and it decides on commands.
#[derive(Debug, Default)]
pub struct Account {
    open: bool,
    balance: i64,
}

impl Aggregate for Account {
    const CATEGORY: &'static str = "account";
    type Command = AccountCommand;
    type Event = AccountEvent;
    type Error = AccountError;

    fn decide(&self, command: &AccountCommand) -> Result<Vec<AccountEvent>, AccountError> {
        match command {
            AccountCommand::Open { .. } if self.open => Err(AccountError::AlreadyOpen),
            AccountCommand::Open { owner } => Ok(vec![Opened { owner: owner.clone() }.into()]),
            _ if !self.open => Err(AccountError::NotOpen),
            AccountCommand::Deposit { cents } | AccountCommand::Withdraw { cents } if *cents <= 0 => {
                Err(AccountError::NotPositive(*cents))
            }
            AccountCommand::Deposit { cents } => Ok(vec![Deposited { cents: *cents }.into()]),
            AccountCommand::Withdraw { cents } if *cents > self.balance => {
                Err(AccountError::InsufficientFunds { balance: self.balance, asked: *cents })
            }
            AccountCommand::Withdraw { cents } => Ok(vec![Withdrawn { cents: *cents }.into()]),
        }
    }

    fn evolve(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::Opened(_) => self.open = true,
            AccountEvent::Deposited(e) => self.balance += e.cents,
            AccountEvent::Withdrawn(e) => self.balance -= e.cents,
        }
    }

    // Opening starts a stream: the handler decides it without reading the store.
    fn creates_stream(command: &AccountCommand) -> bool {
        matches!(command, AccountCommand::Open { .. })
    }
}
// ANCHOR_END: aggregate

impl Account {
    /// The balance in cents.
    pub fn balance(&self) -> i64 {
        self.balance
    }
}

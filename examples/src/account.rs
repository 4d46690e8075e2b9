//! The domain every example uses: a bank account.

// ANCHOR: events
use serde::{Deserialize, Serialize};
use tidemark::Aggregate;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Opened {
    pub owner: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deposited {
    pub cents: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Withdrawn {
    pub cents: i64,
}

tidemark::domain_events! {
    #[derive(Debug, Clone, PartialEq)]
    pub enum AccountEvent {
        Opened(Opened) = ("AccountOpened", 1),
        Deposited(Deposited) = ("MoneyDeposited", 1),
        Withdrawn(Withdrawn) = ("MoneyWithdrawn", 1),
    }
}
// ANCHOR_END: events

// ANCHOR: aggregate
#[derive(Debug, Clone, PartialEq)]
pub enum AccountCommand {
    Open { owner: String },
    Deposit { cents: i64 },
    Withdraw { cents: i64 },
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AccountError {
    #[error("the account is already open")]
    AlreadyOpen,
    #[error("the account is not open")]
    NotOpen,
    #[error("amounts are positive, got {0}")]
    NotPositive(i64),
    #[error("insufficient funds: balance {balance}, asked {asked}")]
    InsufficientFunds { balance: i64, asked: i64 },
}

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

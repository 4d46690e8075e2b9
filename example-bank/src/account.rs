//! The account: a pure decider.

use serde::{Deserialize, Serialize};
use tidemark::Aggregate;

/// The account was opened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Opened {
    /// Who holds it.
    pub owner: String,
}

/// Money came in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deposited {
    /// The amount, in cents.
    pub cents: i64,
    /// What for.
    pub memo: String,
}

/// Money went out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Withdrawn {
    /// The amount, in cents.
    pub cents: i64,
    /// What for.
    pub memo: String,
}

tidemark::domain_events! {
    /// What happens to an account.
    #[derive(Debug, Clone, PartialEq)]
    pub enum AccountEvent {
        /// The account was opened.
        Opened(Opened) = ("AccountOpened", 1),
        /// Money was put in.
        Deposited(Deposited) = ("MoneyDeposited", 1),
        /// Money was taken out.
        Withdrawn(Withdrawn) = ("MoneyWithdrawn", 1),
    }
}

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
        /// How much, in cents (positive).
        cents: i64,
        /// A note for the statement.
        memo: String,
    },
    /// Take money out, never below zero.
    Withdraw {
        /// How much, in cents (positive).
        cents: i64,
        /// A note for the statement.
        memo: String,
    },
}

/// Why an account refused a command.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum AccountError {
    /// Opened twice.
    #[error("the account is already open")]
    AlreadyOpen,
    /// Not opened yet.
    #[error("the account is not open")]
    NotOpen,
    /// Zero or a negative amount.
    #[error("amounts are positive, got {0}")]
    NotPositive(i64),
    /// More asked than held.
    #[error("insufficient funds: balance {balance}, asked {asked}")]
    InsufficientFunds {
        /// The balance, in cents.
        balance: i64,
        /// The amount asked, in cents.
        asked: i64,
    },
}

/// The state a decision needs.
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
            AccountCommand::Deposit { cents, .. } | AccountCommand::Withdraw { cents, .. } if *cents <= 0 => {
                Err(AccountError::NotPositive(*cents))
            }
            AccountCommand::Deposit { cents, memo } => Ok(vec![Deposited { cents: *cents, memo: memo.clone() }.into()]),
            AccountCommand::Withdraw { cents, .. } if *cents > self.balance => {
                Err(AccountError::InsufficientFunds { balance: self.balance, asked: *cents })
            }
            AccountCommand::Withdraw { cents, memo } => {
                Ok(vec![Withdrawn { cents: *cents, memo: memo.clone() }.into()])
            }
        }
    }

    fn evolve(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::Opened(_) => self.open = true,
            AccountEvent::Deposited(e) => self.balance += e.cents,
            AccountEvent::Withdrawn(e) => self.balance -= e.cents,
        }
    }

    fn creates_stream(command: &AccountCommand) -> bool {
        matches!(command, AccountCommand::Open { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidemark::AggregateTest;

    fn opened() -> AccountEvent {
        Opened { owner: "ada".into() }.into()
    }

    #[test]
    fn a_withdrawal_within_the_balance_is_recorded() {
        let deposit = Deposited { cents: 500, memo: "salary".into() };
        AggregateTest::<Account>::given([opened(), deposit.into()])
            .when(AccountCommand::Withdraw { cents: 200, memo: "rent".into() })
            .then([Withdrawn { cents: 200, memo: "rent".into() }.into()]);
    }

    #[test]
    fn an_overdraft_is_refused() {
        AggregateTest::<Account>::given([opened()])
            .when(AccountCommand::Withdraw { cents: 1, memo: "coffee".into() })
            .then_error(AccountError::InsufficientFunds { balance: 0, asked: 1 });
    }

    #[test]
    fn nothing_happens_to_an_account_never_opened() {
        AggregateTest::<Account>::given_no_events()
            .when(AccountCommand::Deposit { cents: 1, memo: String::new() })
            .then_error(AccountError::NotOpen);
    }
}

//! The benchmark's aggregate: a bank account with deposit and withdrawal rules.
//!
//! Small but realistic: events carry ~200-300 bytes of JSON (references, a free-text
//! description, a counterparty IBAN, a booking time), and `decide` checks real rules
//! against state rebuilt from the whole stream.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tidemark::Aggregate;

/// An account was opened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Opened {
    pub owner: String,
    pub currency: String,
    pub overdraft_limit_cents: i64,
    pub branch: String,
    pub product: String,
    pub opened_at: DateTime<Utc>,
}

/// Money was booked onto the account (deposit) or off it (withdrawal).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Booking {
    pub amount_cents: i64,
    pub currency: String,
    pub reference: String,
    pub description: String,
    pub counterparty_iban: String,
    pub channel: String,
    pub booked_at: DateTime<Utc>,
}

/// A withdrawal (same shape as a deposit, another type).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Withdrawal(pub Booking);

tidemark::domain_events! {
    #[derive(Debug, Clone, PartialEq)]
    pub enum AccountEvent {
        Opened(Opened) = ("AccountOpened", 1),
        Deposited(Booking) = ("MoneyDeposited", 1),
        Withdrawn(Withdrawal) = ("MoneyWithdrawn", 1),
    }
}

/// What an account can be asked to do.
#[derive(Debug, Clone)]
pub(crate) enum AccountCommand {
    Open(Opened),
    Deposit(Booking),
    Withdraw(Booking),
    /// Migrates an account from a legacy system: opens it and books its history, in one
    /// command (one append of `1 + bookings.len()` events).
    Import {
        open: Opened,
        bookings: Vec<Booking>,
    },
}

/// Why an account refuses a command.
#[derive(Debug, thiserror::Error, PartialEq)]
pub(crate) enum AccountError {
    #[error("the account is already open")]
    AlreadyOpen,
    #[error("the account is not open")]
    NotOpen,
    #[error("amounts are positive")]
    NotPositive,
    #[error("the account holds another currency")]
    WrongCurrency,
    #[error("the withdrawal would pass the overdraft limit")]
    Overdrawn,
}

/// The state `decide` needs.
#[derive(Debug, Default)]
pub(crate) struct Account {
    open: bool,
    currency: String,
    balance_cents: i64,
    overdraft_limit_cents: i64,
}

impl Account {
    fn check(&self, b: &Booking) -> Result<(), AccountError> {
        if !self.open {
            return Err(AccountError::NotOpen);
        }
        if b.amount_cents <= 0 {
            return Err(AccountError::NotPositive);
        }
        if b.currency != self.currency {
            return Err(AccountError::WrongCurrency);
        }
        Ok(())
    }

    fn withdraw(&self, b: &Booking) -> Result<AccountEvent, AccountError> {
        self.check(b)?;
        if self.balance_cents - b.amount_cents < -self.overdraft_limit_cents {
            return Err(AccountError::Overdrawn);
        }
        Ok(Withdrawal(b.clone()).into())
    }

    fn import(&self, open: &Opened, bookings: &[Booking]) -> Result<Vec<AccountEvent>, AccountError> {
        if self.open {
            return Err(AccountError::AlreadyOpen);
        }
        let mut state = Account::default();
        let mut events = vec![AccountEvent::from(open.clone())];
        state.evolve(&events[0]);
        for b in bookings {
            state.check(b)?;
            let event = AccountEvent::Deposited(b.clone());
            state.evolve(&event);
            events.push(event);
        }
        Ok(events)
    }
}

impl Aggregate for Account {
    const CATEGORY: &'static str = "account";
    type Command = AccountCommand;
    type Event = AccountEvent;
    type Error = AccountError;

    fn decide(&self, command: &AccountCommand) -> Result<Vec<AccountEvent>, AccountError> {
        match command {
            AccountCommand::Open(_) if self.open => Err(AccountError::AlreadyOpen),
            AccountCommand::Open(o) => Ok(vec![o.clone().into()]),
            AccountCommand::Deposit(b) => self.check(b).map(|()| vec![AccountEvent::Deposited(b.clone())]),
            AccountCommand::Withdraw(b) => self.withdraw(b).map(|e| vec![e]),
            AccountCommand::Import { open, bookings } => self.import(open, bookings),
        }
    }

    fn creates_stream(command: &AccountCommand) -> bool {
        matches!(command, AccountCommand::Open(_) | AccountCommand::Import { .. })
    }

    fn evolve(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::Opened(o) => {
                self.open = true;
                self.currency.clone_from(&o.currency);
                self.overdraft_limit_cents = o.overdraft_limit_cents;
            }
            AccountEvent::Deposited(b) => self.balance_cents += b.amount_cents,
            AccountEvent::Withdrawn(w) => self.balance_cents -= w.0.amount_cents,
        }
    }
}

/// A typical opening.
pub(crate) fn opened(n: u64) -> Opened {
    Opened {
        owner: format!("Customer {n:08} (Mustermann & Söhne GmbH, Hamburg)"),
        currency: "EUR".to_owned(),
        overdraft_limit_cents: 50_000,
        branch: "DE-HH-0042".to_owned(),
        product: "business-current-account-2026".to_owned(),
        opened_at: Utc::now(),
    }
}

/// A typical booking of `amount_cents`.
pub(crate) fn booking(n: u64, amount_cents: i64) -> Booking {
    Booking {
        amount_cents,
        currency: "EUR".to_owned(),
        reference: format!("INV-2026-{n:09}"),
        description: format!("Payment for invoice INV-2026-{n:09}, delivery of office supplies, thank you"),
        counterparty_iban: "DE89370400440532013000".to_owned(),
        channel: "sepa-credit-transfer".to_owned(),
        booked_at: Utc::now(),
    }
}

/// A writer's `n`-th command on its `accounts` open accounts (`n` counts from 1 in its low
/// 32 bits; the high ones tell writers apart): which account, and what to ask of it. The
/// writer takes its accounts in turn, and each account gets a deposit, then a withdrawal,
/// alternating from a deposit, so its balance never falls below the seeded one and no
/// command is refused however many commands a window holds. (The kind once followed `n`'s
/// parity alone, so with an even number of accounts half of them only ever got
/// withdrawals, and a fast enough window overdrew them.)
pub(crate) fn busy_command(n: u64, accounts: usize) -> (usize, AccountCommand) {
    let count = n.wrapping_sub(1) & u64::from(u32::MAX);
    let accounts = accounts.max(1) as u64;
    let (slot, round) = (count % accounts, count / accounts);
    let command = if round % 2 == 0 {
        AccountCommand::Deposit(booking(n, 5_000))
    } else {
        AccountCommand::Withdraw(booking(n, 3_000))
    };
    (slot as usize, command)
}

#[cfg(test)]
mod tests {
    use tidemark::{AggregateTest, DomainEvent};

    use super::*;

    #[test]
    fn payloads_are_a_few_hundred_bytes() {
        let size = |e: AccountEvent| e.encode().map(|raw| raw.get().len()).unwrap_or_default();
        for n in [size(opened(7).into()), size(AccountEvent::Deposited(booking(7, 1)))] {
            assert!((200..=300).contains(&n), "{n} bytes");
        }
    }

    #[test]
    fn withdrawals_respect_the_overdraft_limit() {
        AggregateTest::<Account>::given([opened(1).into()])
            .when(AccountCommand::Withdraw(booking(1, 60_000)))
            .then_error(AccountError::Overdrawn);
        AggregateTest::<Account>::given_no_events()
            .when(AccountCommand::Deposit(booking(1, 10)))
            .then_error(AccountError::NotOpen);
    }

    #[test]
    fn busy_commands_never_overdraw_an_account() {
        // An even number of accounts, freshly opened (no balance), and 40 commands each:
        // with the kind taken from the count's parity alone, half of them would only get
        // withdrawals and be overdrawn after 17.
        for (writer, accounts) in [(0_u64, 128_usize), (5, 64), (31, 1), (2, 25)] {
            let mut states: Vec<Account> = (0..accounts).map(|_| Account::default()).collect();
            for state in &mut states {
                state.evolve(&opened(1).into());
            }
            for count in 1..=(accounts as u64 * 40) {
                let (slot, command) = busy_command((writer << 32) + count, accounts);
                let events = states[slot].decide(&command).expect("no busy command is refused");
                events.iter().for_each(|e| states[slot].evolve(e));
            }
        }
    }

    #[test]
    fn an_import_books_every_line() {
        let bookings: Vec<_> = (0..99).map(|n| booking(n, 100)).collect();
        let events = Account::default().decide(&AccountCommand::Import { open: opened(1), bookings });
        assert_eq!(events.map(|e| e.len()), Ok(100));
    }
}

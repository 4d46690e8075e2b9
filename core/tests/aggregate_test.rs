//! The given/when/then harness: it passes on the right decision and fails on any other.

use tidemark::AggregateTest;

mod support;
use support::*;

#[test]
fn given_when_then_decides_and_returns_the_new_state() {
    let state = AggregateTest::<Wallet>::given([opened("carol"), credited(10)])
        .when(WalletCommand::Debit(4))
        .then([Debited { cents: 4 }.into()]);
    assert_eq!(state, Wallet { open: true, owner: "carol".into(), balance: 6 });
    AggregateTest::<Wallet>::given_no_events().when(open(3)).then([opened("alice"), credited(3)]);
}

#[test]
fn given_when_then_error_checks_the_rejection() {
    AggregateTest::<Wallet>::given([opened("carol"), credited(10)])
        .when(WalletCommand::Debit(11))
        .then_error(WalletError::Insufficient { balance: 10, requested: 11 });
    AggregateTest::<Wallet>::given_no_events().when(WalletCommand::Credit(1)).then_error(WalletError::NotOpen);
}

#[test]
#[should_panic(expected = "decided other events")]
fn then_fails_on_other_events() {
    AggregateTest::<Wallet>::given([opened("carol")]).when(WalletCommand::Credit(2)).then([credited(3)]);
}

#[test]
#[should_panic(expected = "was rejected")]
fn then_fails_on_a_rejection() {
    AggregateTest::<Wallet>::given_no_events().when(WalletCommand::Credit(2)).then([credited(2)]);
}

#[test]
#[should_panic(expected = "rejected with another error")]
fn then_error_fails_on_another_error() {
    AggregateTest::<Wallet>::given_no_events().when(WalletCommand::Credit(2)).then_error(WalletError::NotPositive);
}

#[test]
#[should_panic(expected = "expected rejection")]
fn then_error_fails_when_the_command_is_accepted() {
    AggregateTest::<Wallet>::given([opened("carol")])
        .when(WalletCommand::Credit(2))
        .then_error(WalletError::NotPositive);
}

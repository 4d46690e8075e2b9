//! The bank on a real PostgreSQL, in a schema of its own (dropped with the projection's
//! schema when the test ends).

use example_bank::{AccountError, Bank, Error, Line};
use tidemark::{EventStore, StreamVersion};
use tidemark_testkit::TestSchema;
use tokio_util::sync::CancellationToken;

fn line(version: i64, kind: &str, cents: i64, balance: i64, memo: &str) -> Line {
    Line { version, kind: kind.into(), cents, balance, memo: memo.into() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_follow_the_account_and_survive_a_restart() {
    let schema = TestSchema::new().await;
    let bank = Bank::connect(schema.url(), schema.name()).await.expect("connect");
    bank.migrate().await.expect("migrate");
    let stop = CancellationToken::new();
    let running = tokio::spawn({
        let (bank, stop) = (bank.clone(), stop.clone());
        async move { bank.run(stop).await }
    });

    let account = bank.open("ada").await.expect("open");
    bank.deposit(&account, 12_000, "salary").await.expect("deposit");
    bank.withdraw(&account, 4_550, "rent").await.expect("withdraw");
    let refused = bank.withdraw(&account, 100_000, "a boat").await;
    assert!(matches!(refused, Err(Error::Refused(AccountError::InsufficientFunds { balance: 7_450, .. }))));
    let expected = vec![
        line(1, "opened", 0, 0, "ada"),
        line(2, "deposit", 12_000, 12_000, "salary"),
        line(3, "withdrawal", -4_550, 7_450, "rent"),
    ];
    assert_eq!(bank.statement(&account).await.expect("statement"), expected);
    let stored = bank.store().read_stream(&account, StreamVersion(1), 10).await.expect("read");
    assert_eq!(stored.len(), 3, "the refused withdrawal wrote nothing");
    stop.cancel();
    running.await.expect("join").expect("ran");

    // A new process: its bus publishes the whole log again; the statements take in only
    // what is new, exactly once.
    let again = Bank::connect(schema.url(), schema.name()).await.expect("connect again");
    let stop = CancellationToken::new();
    let running = tokio::spawn({
        let (bank, stop) = (again.clone(), stop.clone());
        async move { bank.run(stop).await }
    });
    again.deposit(&account, 500, "refund").await.expect("deposit after the restart");
    let mut expected = expected;
    expected.push(line(4, "deposit", 500, 7_950, "refund"));
    assert_eq!(again.statement(&account).await.expect("statement"), expected);
    stop.cancel();
    running.await.expect("join").expect("ran");
}

//! Opens an account, moves money, prints its statement.
//!
//! `cargo run -p example-bank` (PostgreSQL at `DATABASE_URL`, or
//! postgres://postgres@127.0.0.1:5432/test; schema `BANK_SCHEMA`, or `bank`)

use example_bank::{Bank, Error};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let schema = std::env::var("BANK_SCHEMA").unwrap_or_else(|_| "bank".to_owned());
    let bank = Bank::connect(&url, &schema).await?;
    bank.migrate().await?; // an app would do this in a deployment step
    let shutdown = CancellationToken::new();
    let running = tokio::spawn({
        let (bank, stop) = (bank.clone(), shutdown.clone());
        async move { bank.run(stop).await }
    });

    let account = bank.open("ada").await?;
    bank.deposit(&account, 12_000, "salary").await?;
    bank.withdraw(&account, 4_550, "rent").await?;
    if let Err(refused @ Error::Refused(_)) = bank.withdraw(&account, 100_000, "a boat").await {
        println!("{refused}");
    }
    println!("statement of {account}:");
    for line in bank.statement(&account).await? {
        println!("  {:>2} {:<10} {:>9} {:>9}  {}", line.version, line.kind, line.cents, line.balance, line.memo);
    }

    shutdown.cancel();
    running.await??;
    Ok(())
}

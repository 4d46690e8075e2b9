//! Scenario P (feature `cqrs-es`): the F1 and F2 workloads through cqrs-es 0.5 with
//! postgres-es 0.5, next to tidemark's measured again in the same run.
//!
//! Their side uses their documented setup: `postgres_cqrs(pool, queries, services)`'s
//! event store (`PersistedEventStore::new_event_store`, no snapshots) over the tables of
//! their `db/init.sql` (`events`, `snapshots`), created in their own schema
//! `<run schema>_cqrs` (`PostgresEventRepository::with_tables`). The pool is the
//! baselines' (N + 2 connections, no ping on checkout), the aggregate the same bank
//! account: `handle` calls the same `decide`, `apply` the same `evolve`.

use std::sync::Arc;

use anyhow::{anyhow, Context as _, Result};
use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{CqrsFramework, DomainEvent};
use postgres_es::{PostgresCqrs, PostgresEventRepository};
use serde::{Deserialize, Serialize};
use tidemark::Aggregate as _;

use crate::domain::{booking, busy_command, opened, Account, AccountCommand, AccountError, AccountEvent};
use crate::domain::{Booking, Opened, Withdrawal};
use crate::framework::{deal, Work};
use crate::runner::{measure, Op, Sample};
use crate::scenarios::Suite;

/// The account as a cqrs-es aggregate: the bench's `Account` inside.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct CqrsAccount {
    #[serde(skip)]
    state: Account,
}

/// The account's events in cqrs-es' form (serde's externally tagged enum).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum CqrsEvent {
    AccountOpened(Opened),
    MoneyDeposited(Booking),
    MoneyWithdrawn(Withdrawal),
}

impl From<AccountEvent> for CqrsEvent {
    fn from(e: AccountEvent) -> Self {
        match e {
            AccountEvent::Opened(o) => Self::AccountOpened(o),
            AccountEvent::Deposited(b) => Self::MoneyDeposited(b),
            AccountEvent::Withdrawn(w) => Self::MoneyWithdrawn(w),
        }
    }
}

impl From<CqrsEvent> for AccountEvent {
    fn from(e: CqrsEvent) -> Self {
        match e {
            CqrsEvent::AccountOpened(o) => Self::Opened(o),
            CqrsEvent::MoneyDeposited(b) => Self::Deposited(b),
            CqrsEvent::MoneyWithdrawn(w) => Self::Withdrawn(w),
        }
    }
}

impl DomainEvent for CqrsEvent {
    fn event_type(&self) -> String {
        match self {
            Self::AccountOpened(_) => "AccountOpened",
            Self::MoneyDeposited(_) => "MoneyDeposited",
            Self::MoneyWithdrawn(_) => "MoneyWithdrawn",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}

impl cqrs_es::Aggregate for CqrsAccount {
    const TYPE: &'static str = "account";
    type Command = AccountCommand;
    type Event = CqrsEvent;
    type Error = AccountError;
    type Services = ();

    async fn handle(&mut self, command: AccountCommand, _: &(), sink: &EventSink<Self>) -> Result<(), AccountError> {
        for event in self.state.decide(&command)? {
            sink.write(event.into(), self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: CqrsEvent) {
        self.state.evolve(&event.into());
    }
}

/// Their tables (db/init.sql of postgres-es), in `schema`.
fn tables_sql(schema: &str) -> [String; 3] {
    [
        format!("CREATE SCHEMA {schema}"),
        format!(
            "CREATE TABLE {schema}.events (aggregate_type text NOT NULL, aggregate_id text NOT NULL, \
             sequence bigint CHECK (sequence >= 0) NOT NULL, event_type text NOT NULL, event_version text NOT NULL, \
             payload json NOT NULL, metadata json NOT NULL, PRIMARY KEY (aggregate_type, aggregate_id, sequence))"
        ),
        format!(
            "CREATE TABLE {schema}.snapshots (aggregate_type text NOT NULL, aggregate_id text NOT NULL, \
             last_sequence bigint CHECK (last_sequence >= 0) NOT NULL, \
             current_snapshot bigint CHECK (current_snapshot >= 0) NOT NULL, payload json NOT NULL, \
             PRIMARY KEY (aggregate_type, aggregate_id, last_sequence))"
        ),
    ]
}

/// One writer sending commands through cqrs-es.
pub(crate) struct CqrsWriter {
    cqrs: Arc<PostgresCqrs<CqrsAccount>>,
    work: Work,
    ids: Vec<String>,
    n: u64,
}

impl Op for CqrsWriter {
    async fn run(&mut self) -> Result<u64> {
        self.n += 1;
        let n = self.n;
        let (id, command, events) = match self.work {
            Work::Open => (new_id(), AccountCommand::Open(opened(n)), 1),
            Work::Busy => {
                let (slot, command) = busy_command(n, self.ids.len());
                (self.ids[slot].clone(), command, 1)
            }
            Work::Import(events) => (new_id(), import(n, events, 5_000), events as u64),
        };
        self.cqrs.execute(&id, command).await.map_err(|e| anyhow!("cqrs-es: {e}"))?;
        Ok(events)
    }
}

fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn import(n: u64, events: usize, amount: i64) -> AccountCommand {
    let bookings = (1..events as u64).map(|i| booking(n * 1000 + i, amount)).collect();
    AccountCommand::Import { open: opened(n), bookings }
}

impl Suite<'_> {
    /// Measures `work` through cqrs-es with `writers` writers, on fresh tables.
    pub(crate) async fn cqrs(&self, writers: usize, work: Work) -> Result<Sample> {
        eprintln!("measuring cqrs-es {work:?}/w{writers}");
        self.db.reset().await?;
        let schema = format!("{}_cqrs", self.db.schema());
        for sql in tables_sql(&schema) {
            sqlx::query(&sql).execute(self.db.admin()).await.context("creating cqrs-es' tables")?;
        }
        let tag = self.db.next_tag();
        let pool = self.db.raw_pool(&tag, writers + 2).await?;
        let repo = PostgresEventRepository::new(pool.clone())
            .with_tables(&format!("{schema}.events"), &format!("{schema}.snapshots"));
        let cqrs = Arc::new(CqrsFramework::new(PersistedEventStore::new_event_store(repo), Vec::new(), ()));
        let hands =
            if work == Work::Busy { deal(&self.cqrs_seed(&cqrs).await?, writers) } else { vec![Vec::new(); writers] };
        self.db.settle(self.settings.quiet_wait).await;
        let ops = hands
            .into_iter()
            .enumerate()
            .map(|(i, ids)| CqrsWriter { cqrs: cqrs.clone(), work, ids, n: (i as u64) << 32 })
            .collect();
        let sample = measure(self.db, &tag, self.plan(), ops).await;
        pool.close().await;
        sample
    }

    /// Opens `existing_streams` accounts with `history` events each (one import command
    /// each, 16 at a time), as F1's seeding does for tidemark.
    async fn cqrs_seed(&self, cqrs: &Arc<PostgresCqrs<CqrsAccount>>) -> Result<Vec<String>> {
        let ids: Vec<String> = (0..self.settings.existing_streams).map(|_| new_id()).collect();
        let history = self.settings.history;
        let mut tasks = tokio::task::JoinSet::new();
        for (t, chunk) in ids.chunks(ids.len().div_ceil(16).max(1)).enumerate() {
            let (cqrs, chunk) = (cqrs.clone(), chunk.to_vec());
            tasks.spawn(async move {
                for (i, id) in chunk.iter().enumerate() {
                    let n = ((t * 1_000_000 + i) * history) as u64;
                    cqrs.execute(id, import(n, history, 10_000)).await.map_err(|e| anyhow!("cqrs-es: {e}"))?;
                }
                anyhow::Ok(())
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.context("a seeding task panicked")??;
        }
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use tidemark::DomainEvent as _;

    use super::*;

    #[test]
    fn events_keep_their_names_and_content_across_both_forms() {
        let events = [
            AccountEvent::from(opened(1)),
            AccountEvent::Deposited(booking(2, 100)),
            Withdrawal(booking(3, 50)).into(),
        ];
        for event in events {
            let theirs = CqrsEvent::from(event.clone());
            assert_eq!(theirs.event_type(), event.event_type());
            assert_eq!(AccountEvent::from(theirs), event);
        }
    }

    #[test]
    fn their_aggregate_applies_the_same_rules() {
        let mut account = CqrsAccount::default();
        cqrs_es::Aggregate::apply(&mut account, CqrsEvent::AccountOpened(opened(1)));
        let refused = account.state.decide(&AccountCommand::Withdraw(booking(1, 60_000)));
        assert_eq!(refused, Err(AccountError::Overdrawn));
    }
}

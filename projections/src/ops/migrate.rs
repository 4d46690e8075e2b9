//! `migrate [--check | --print-sql]`: the schema's migrations, through
//! [`SchemaMigrations`] (implemented by `tidemark-projections-postgres` with its `cli`
//! feature, over every set: the store's, the relay's and the read models').

use std::io::Write;

use serde::Serialize;
use serde_json::json;
use tidemark::{EventStore, LogDiagnostics};

use super::command::MigrateArgs;
use super::registry::OpsFuture;
use super::run::emit;
use super::{Ops, OpsExit};
use crate::error::Result;

/// A migration not applied yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PendingMigration {
    /// The set it belongs to (`store`, `relay`, `projections`).
    pub set: String,
    /// Its version.
    pub version: i64,
    /// What it does, from its file name.
    pub description: String,
    /// Its SQL.
    #[serde(skip)]
    pub sql: String,
}

impl PendingMigration {
    /// A pending migration of `set`.
    pub fn new(set: &str, version: i64, description: &str, sql: &str) -> Self {
        Self { set: set.to_owned(), version, description: description.to_owned(), sql: sql.to_owned() }
    }
}

/// The schema's migrations, for the ops commands; mount with [`Ops::migrations`].
pub trait SchemaMigrations: Send + Sync {
    /// The migrations not applied yet, in the order `apply` runs them.
    fn pending(&self) -> OpsFuture<'_, Vec<PendingMigration>>;
    /// Applies every pending migration.
    fn apply(&self) -> OpsFuture<'_, ()>;
}

impl<S: EventStore + LogDiagnostics> Ops<S> {
    pub(super) async fn migrate(&self, args: MigrateArgs, out: &mut dyn Write, err: &mut dyn Write) -> Result<OpsExit> {
        let Some(migrations) = &self.migrations else {
            let _ = writeln!(err, "no schema migrations are mounted in this application's ops commands");
            return Ok(OpsExit::Failed);
        };
        let pending = migrations.pending().await?;
        if args.print_sql {
            for m in &pending {
                let _ = if args.output.json {
                    let line =
                        json!({ "set": m.set, "version": m.version, "description": m.description, "sql": m.sql });
                    writeln!(out, "{line}")
                } else {
                    writeln!(out, "-- {} {} {}\n{}\n", m.set, m.version, m.description, m.sql.trim_end())
                };
            }
            return Ok(OpsExit::Done);
        }
        if args.check {
            for m in &pending {
                let text = format!("pending  {:<12} {:>5}  {}", m.set, m.version, m.description);
                emit(out, args.output, &text, || serde_json::to_value(m).unwrap_or_default());
            }
            if pending.is_empty() && !args.output.json {
                let _ = writeln!(out, "up to date: no pending migrations");
            }
            return Ok(if pending.is_empty() { OpsExit::Done } else { OpsExit::Problems });
        }
        migrations.apply().await?;
        let text = format!("applied {} migrations", pending.len());
        emit(out, args.output, &text, || json!({ "applied": pending }));
        Ok(OpsExit::Done)
    }
}

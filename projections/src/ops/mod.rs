//! The ops CLI as a library piece: an application mounts [`OpsCommand`] into its own clap
//! binary and hands it to [`Ops::run`] with its projections and codecs, so the commands
//! know the application's projections. Exit codes: 0 done, 1 the check found problems
//! (`events verify`, `projections audit`, `migrate --check`), 2 a destructive command refused without
//! confirmation (as clap's usage errors), 3 the operation failed or found nothing (an
//! unknown projection, a stream with no events).

mod audit;
mod change;
mod command;
mod control;
mod dlq;
mod lifecycle;
mod migrate;
mod progress;
mod registry;
mod relay;
mod run;
mod verify;

use std::fmt;
use std::sync::Arc;

use tidemark::{EventStore, LogDiagnostics};

pub use audit::{AuditReport, Finding};
pub use command::{
    DlqCommand, EventsCommand, MigrateArgs, OpsCommand, Output, ProjectionsCommand, RelayCommand, StreamCommand,
};
pub use lifecycle::{parse_age, ArchiveOps, ArchivedStreams};
pub use migrate::{PendingMigration, SchemaMigrations};
pub use registry::{OpsFuture, PartitionView, ProjectionOps, ProjectionState};
pub use relay::{RelayOps, RelayState};
pub use verify::{verify_log, EventVerifier, VerifyFailure, VerifyReport};

/// How an ops command ended, as a process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OpsExit {
    /// Done (0).
    Done,
    /// The check found problems (1).
    Problems,
    /// A destructive command was not confirmed: no `--yes`, and no terminal to ask on, or
    /// the answer was no (2).
    Refused,
    /// The operation failed or was refused (3).
    Failed,
}

impl OpsExit {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Self::Done => 0,
            Self::Problems => 1,
            Self::Refused => 2,
            Self::Failed => 3,
        }
    }
}

/// The application's projections and codecs, and its store.
pub struct Ops<S> {
    store: S,
    projections: Vec<Arc<dyn ProjectionOps>>,
    verifiers: Vec<Box<dyn EventVerifier>>,
    relay: Option<Box<dyn RelayOps>>,
    migrations: Option<Box<dyn SchemaMigrations>>,
    archive: Option<Box<dyn ArchiveOps>>,
    interactive: bool,
}

impl<S> fmt::Debug for Ops<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.projections.iter().map(|p| p.name()).collect();
        f.debug_struct("Ops")
            .field("projections", &names)
            .field("codecs", &self.verifiers.len())
            .field("relay", &self.relay.is_some())
            .field("migrations", &self.migrations.is_some())
            .field("archive", &self.archive.is_some())
            .finish()
    }
}

impl<S: EventStore + LogDiagnostics> Ops<S> {
    /// Ops over `store`, with no projections or codecs yet. Confirmations are asked on the
    /// terminal when standard input is one.
    pub fn new(store: S) -> Self {
        let interactive = std::io::IsTerminal::is_terminal(&std::io::stdin());
        Self {
            store,
            projections: Vec::new(),
            verifiers: Vec::new(),
            relay: None,
            migrations: None,
            archive: None,
            interactive,
        }
    }

    /// Mounts a projection (a [`ProjectionRunner`](crate::ProjectionRunner)).
    pub fn projection(mut self, projection: impl ProjectionOps + 'static) -> Self {
        self.projections.push(Arc::new(projection));
        self
    }

    /// Mounts a codec for `events verify`.
    pub fn codec(mut self, codec: impl EventVerifier + 'static) -> Self {
        self.verifiers.push(Box::new(codec));
        self
    }

    /// Mounts the relay, for `relay status` and `relay reset`.
    pub fn relay(mut self, relay: impl RelayOps + 'static) -> Self {
        self.relay = Some(Box::new(relay));
        self
    }

    /// Mounts the schema's migrations, for `migrate`.
    pub fn migrations(mut self, migrations: impl SchemaMigrations + 'static) -> Self {
        self.migrations = Some(Box::new(migrations));
        self
    }

    /// Mounts the store's archive, for `stream archive`.
    pub fn archive(mut self, archive: impl ArchiveOps + 'static) -> Self {
        self.archive = Some(Box::new(archive));
        self
    }

    /// Never asks for confirmation: destructive commands then need `--yes`.
    pub fn non_interactive(mut self) -> Self {
        self.interactive = false;
        self
    }

    fn find(&self, name: &str) -> Option<&Arc<dyn ProjectionOps>> {
        self.projections.iter().find(|p| p.name() == name)
    }
}

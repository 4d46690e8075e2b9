//! The ops commands, as clap subcommands an application mounts into its own binary.

use clap::{Args, Subcommand};

/// Operations on projections, dead letters, stored events, the relay and the schema.
#[derive(Debug, Clone, Subcommand)]
#[non_exhaustive]
pub enum OpsCommand {
    /// Projections: list, status, audit, pause, resume, rebuild, replay, reset.
    #[command(subcommand)]
    Projections(ProjectionsCommand),
    /// Dead letters and rogue messages: list, retry or skip parked streams, skip rogue messages.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Stored events.
    #[command(subcommand)]
    Events(EventsCommand),
    /// Streams.
    #[command(subcommand)]
    Stream(StreamCommand),
    /// The relay that publishes the log: status, reset.
    #[command(subcommand)]
    Relay(RelayCommand),
    /// The database schema's migrations: apply them, check for pending ones, or print
    /// their SQL.
    Migrate(MigrateArgs),
}

/// `relay …`
#[derive(Debug, Clone, Subcommand)]
#[non_exhaustive]
pub enum RelayCommand {
    /// The relay's leader (the session holding its lock, if any), how many standbys wait,
    /// its checkpoint, how far the checkpoint is behind the readable log (events, and the
    /// age of the oldest) and what holds the log back. The checkpoint is saved at most
    /// every checkpoint interval, so the lag it gives may overstate the leader's own by
    /// that much.
    Status(Output),
    /// Sets the relay's checkpoint: backwards to publish events again (JetStream drops
    /// those it still holds within its duplicate window; consumers skip the rest as
    /// seen), forwards to skip them (consumers then never get them from the stream).
    /// Refuses a position ahead of the log's head, and refuses while a relay leads: stop
    /// every relay of the name first, since a running leader saves its own position over
    /// the reset.
    Reset {
        /// The new checkpoint, written TRANSACTION/SEQUENCE (0/0: the start of the log);
        /// the relay publishes the events after it.
        #[arg(long, value_name = "POSITION")]
        to: tidemark::LogPosition,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
        /// How to print the result.
        #[command(flatten)]
        output: Output,
    },
}

/// `migrate [--check | --print-sql]`: the migrations of every set (the store's, the
/// relay's and the read models').
#[derive(Debug, Clone, Copy, Default, Args)]
#[non_exhaustive]
pub struct MigrateArgs {
    /// Apply nothing: list the pending migrations and exit 1 when there are any, 0 when
    /// the schema is up to date.
    #[arg(long, conflicts_with = "print_sql")]
    pub check: bool,
    /// Apply nothing: print the SQL of the pending migrations, in the order they would
    /// run (each set applies its own in a transaction, with the schema as search path).
    #[arg(long)]
    pub print_sql: bool,
    /// How to print the result.
    #[command(flatten)]
    pub output: Output,
}

/// `projections …`
#[derive(Debug, Clone, Subcommand)]
#[non_exhaustive]
pub enum ProjectionsCommand {
    /// The mounted projections, one name per line.
    List(Output),
    /// Each projection's version, positions, lag (events not taken in yet, and the age of
    /// the oldest) and dead letters.
    Status(Output),
    /// Compares the version a projection has taken in of every stream with the store's
    /// last version of it; exits 1 when any stream is behind, missing or ahead.
    Audit {
        /// The projection.
        name: String,
        /// While problems are found, audit again for up to this many seconds (for a
        /// system still taking writes in).
        #[arg(long, default_value_t = 0)]
        wait: u64,
        /// How to print the result.
        #[command(flatten)]
        output: Output,
    },
    /// Stops a projection taking batches, in every process that runs it, without a
    /// restart: its runners finish the batch they are applying and commit nothing more
    /// from at most a second later; `projections status` shows it paused. The pause is
    /// stored with the read models and outlives restarts until `projections resume`.
    Pause {
        /// The projection.
        name: String,
        /// How to print the result.
        #[command(flatten)]
        output: Output,
    },
    /// Lets a paused projection take batches again: its runners go on from where it
    /// stopped, within a second.
    Resume {
        /// The projection.
        name: String,
        /// How to print the result.
        #[command(flatten)]
        output: Output,
    },
    /// Rebuilds a projection (or, with `--all`, every mounted one, one after another) from
    /// the log into a shadow and swaps it in.
    Rebuild {
        /// The projection.
        #[arg(required_unless_present = "all")]
        name: Option<String>,
        /// Rebuild every mounted projection, one after another (asked once). Stops at the
        /// first that fails.
        #[arg(long, conflicts_with_all = ["name", "stream"])]
        all: bool,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
        /// Throw away an interrupted rebuild instead of resuming it.
        #[arg(long)]
        restart: bool,
        /// Events per transaction.
        #[arg(long, default_value_t = 5_000)]
        batch_size: usize,
        /// Rebuild only this stream's rows, in place (the projection must support it).
        #[arg(long)]
        stream: Option<String>,
        /// How to print the result.
        #[command(flatten)]
        output: Output,
    },
    /// Applies again, in place, the events a projection has taken in after a log position
    /// (`--from`) or recorded since a time (`--since`), in log order up to the log's head
    /// as it was when the replay started, each stream it touches brought up to where the
    /// projection's runners took it. Seen versions and positions stay; events the
    /// projection has not taken in yet are left to its runners, which may keep running.
    ///
    /// Replaying over the existing read model is only safe for an idempotent projection,
    /// one whose `apply` sets what an event says (an upsert of the row it describes);
    /// a projection that adds to what is there (counters, sums, appended lists) counts
    /// every replayed event twice: rebuild it instead. Stops at the first event the
    /// projection fails on, leaving the pages before it applied.
    #[command(group = clap::ArgGroup::new("start").required(true).args(["from", "since"]))]
    Replay {
        /// The projection.
        name: String,
        /// Replay the events after this log position, written TRANSACTION/SEQUENCE as
        /// `projections status` and `stream show` print it (0/0: the whole log).
        #[arg(long, value_name = "POSITION")]
        from: Option<tidemark::LogPosition>,
        /// Replay from the first event recorded at or after this time, in RFC 3339
        /// (2026-01-31T12:00:00Z); found by reading the log from its start.
        #[arg(long, value_name = "TIME")]
        since: Option<chrono::DateTime<chrono::Utc>>,
        /// Events read from the log per page (each page is applied in one transaction
        /// per partition).
        #[arg(long, default_value_t = 1_000)]
        batch_size: usize,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
        /// How to print the result.
        #[command(flatten)]
        output: Output,
    },
    /// Deletes a projection's read model; the next start builds it from the log.
    Reset {
        /// The projection.
        name: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
        /// How to print the result.
        #[command(flatten)]
        output: Output,
    },
}

/// `dlq …`
#[derive(Debug, Clone, Subcommand)]
#[non_exhaustive]
pub enum DlqCommand {
    /// Dead letters of every projection (or one).
    List {
        /// Only this projection.
        #[arg(long)]
        projection: Option<String>,
        /// How to print the result.
        #[command(flatten)]
        output: Output,
    },
    /// Applies a parked stream's events again, in order (after a fix).
    Retry {
        /// The projection.
        projection: String,
        /// The parked stream.
        stream: String,
        /// How to print the result.
        #[command(flatten)]
        output: Output,
    },
    /// Marks a parked stream's events skipped and lets the stream go on; with `--rogue`,
    /// marks the projection's parked rogue messages skipped instead.
    Skip {
        /// The projection.
        projection: String,
        /// The parked stream.
        #[arg(required_unless_present = "rogue")]
        stream: Option<String>,
        /// Skip parked rogue messages (messages that were not events of the store).
        #[arg(long, conflicts_with = "stream")]
        rogue: bool,
        /// With `--rogue`: only the message with this key (as `dlq list` shows it).
        #[arg(long, requires = "rogue")]
        key: Option<String>,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
        /// How to print the result.
        #[command(flatten)]
        output: Output,
    },
}

/// `events …`
#[derive(Debug, Clone, Subcommand)]
#[non_exhaustive]
pub enum EventsCommand {
    /// Runs every stored event through its upcasters and decoder; exits 1 on any failure.
    Verify(Output),
}

/// `stream …`
#[derive(Debug, Clone, Subcommand)]
#[non_exhaustive]
pub enum StreamCommand {
    /// Deletes a stream for good: appends its tombstone, after which every append to it
    /// fails and loading its aggregate says it is deleted; its events stay readable.
    /// Exits 3 when it is deleted already.
    Tombstone {
        /// The stream id.
        id: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
        /// How to print the result.
        #[command(flatten)]
        output: Output,
    },
    /// Moves the events of streams deleted longer ago than `--older-than` into the
    /// archive table (their tombstones stay). Only events every relay has published and
    /// whose transactions have ended move; every read of events still sees them.
    Archive {
        /// How long ago a stream's tombstone must have been written: a whole number and a
        /// unit, d, h, m or s (90d).
        #[arg(long, value_name = "AGE", value_parser = super::lifecycle::parse_age)]
        older_than: std::time::Duration,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
        /// How to print the result.
        #[command(flatten)]
        output: Output,
    },
    /// The events of one stream, as stored; exits 3 when the stream has none.
    Show {
        /// The stream id.
        id: String,
        /// How to print the result.
        #[command(flatten)]
        output: Output,
    },
}

/// Output format.
#[derive(Debug, Clone, Copy, Default, Args)]
pub struct Output {
    /// One JSON object per line instead of text.
    #[arg(long)]
    pub json: bool,
}

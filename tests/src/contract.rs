//! The contract suite: what every [`tidemark::EventStore`] must do.
//!
//! Each case is a `pub async fn` taking a fresh store. Run them all for a store with
//! [`contract_tests!`](crate::contract_tests):
//!
//! ```no_run
//! tidemark_tests::contract_tests!(|| async { (tidemark::InMemoryEventStore::new(), ()) });
//! ```
//!
//! The factory returns the store and a guard kept alive until the case ends (an
//! isolated database schema, say). A store must use the default event size limit
//! (`DEFAULT_MAX_EVENT_BYTES`). Cases use their own fresh stream ids; only
//! `stream_version_and_log_head` requires an empty log.
//!
//! The log may show an event some time after its append returned (a gap-safe store
//! waits for every transaction that could be ordered before it, anywhere on the
//! server): the cases wait for it, at most 30 s, instead of expecting it at once.
//!
//! [`wait_for_log_without_spurious_wakeups`] is stricter than the trait's documentation
//! and not part of the macro: call it from a test of a store that promises it.

mod append;
mod fixture;
mod idempotency;
mod race;
mod read;
mod rejections;
mod snapshots;
mod tombstone;
mod wait;

pub use fixture::settle;

pub use append::{
    append_and_read_round_trip, conflict_writes_nothing, empty_append, expected_any, expected_exact,
    expected_no_stream, expected_stream_exists,
};
pub use idempotency::{
    duplicate_command_id, racing_duplicate_command_ids, racing_duplicate_command_ids_expecting_no_stream,
};
pub use race::exact_version_race;
pub use read::{
    identities_of_stored_versions, per_stream_order_in_log, read_log_paging, read_stream_ranges,
    stream_version_and_log_head, verify_events_returns_only_mismatches,
};
pub use rejections::{
    duplicate_event_id, invalid_events, oversize_event, tenant_mismatch, tombstone_takes_the_stream_tenant,
};
pub use snapshots::snapshots_save_load_replace;
pub use tombstone::{tombstone_ends_stream, tombstone_races_appends};
pub use wait::{
    wait_for_log_returns_when_behind, wait_for_log_times_out, wait_for_log_wakes_on_append,
    wait_for_log_without_spurious_wakeups,
};

/// Generates one `#[tokio::test]` per contract case for a store.
///
/// `$make` is called once per test as `($make)().await` and yields `(store, guard)`: a
/// fresh store and anything that must stay alive while the case runs. The optional
/// `race: tasks, commands, streams` sizes the concurrency race (default 50 × 100 on 10).
#[macro_export]
macro_rules! contract_tests {
    ($make:expr) => {
        $crate::contract_tests!($make, race: 50, 100, 10);
    };
    ($make:expr, race: $tasks:expr, $commands:expr, $streams:expr) => {
        $crate::contract_tests!(@cases $make;
            append_and_read_round_trip, expected_any, expected_no_stream, expected_stream_exists,
            expected_exact, conflict_writes_nothing, empty_append, read_stream_ranges, read_log_paging,
            identities_of_stored_versions, verify_events_returns_only_mismatches,
            per_stream_order_in_log, stream_version_and_log_head, wait_for_log_wakes_on_append,
            wait_for_log_times_out, wait_for_log_without_spurious_wakeups, wait_for_log_returns_when_behind, duplicate_command_id,
            racing_duplicate_command_ids, racing_duplicate_command_ids_expecting_no_stream,
            duplicate_event_id, oversize_event, invalid_events, tenant_mismatch, snapshots_save_load_replace,
            tombstone_ends_stream, tombstone_takes_the_stream_tenant);

        #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn exact_version_race() {
            let (store, guard) = ($make)().await;
            $crate::contract::exact_version_race(store, $tasks, $commands, $streams).await;
            drop(guard);
        }

        #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn tombstone_races_appends() {
            let (store, guard) = ($make)().await;
            $crate::contract::tombstone_races_appends(store).await;
            drop(guard);
        }
    };
    (@cases $make:expr; $($case:ident),+ $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (store, guard) = ($make)().await;
                $crate::contract::$case(store).await;
                drop(guard);
            }
        )+
    };
}

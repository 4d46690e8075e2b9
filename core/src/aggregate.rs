//! Aggregates: pure, synchronous deciders.

use crate::event::DomainEvent;

/// A consistency boundary that decides on commands and evolves from its own events.
///
/// Both methods are pure and synchronous: everything from outside (time, ids, prices)
/// arrives inside the command, so an aggregate is tested without a runtime or mocks
/// (see [`AggregateTest`](crate::AggregateTest)).
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use tidemark::Aggregate;
///
/// #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
/// pub struct Incremented { pub by: u32 }
/// tidemark::domain_events! {
///     #[derive(Debug, Clone, PartialEq)]
///     pub enum CounterEvent { Incremented(Incremented) = ("Incremented", 1) }
/// }
///
/// #[derive(Debug, thiserror::Error, PartialEq)]
/// #[error("the counter would pass its limit")]
/// pub struct TooHigh;
///
/// #[derive(Default)]
/// pub struct Counter { value: u32 }
///
/// impl Aggregate for Counter {
///     const CATEGORY: &'static str = "counter";
///     type Command = u32;
///     type Event = CounterEvent;
///     type Error = TooHigh;
///
///     fn decide(&self, by: &u32) -> Result<Vec<CounterEvent>, TooHigh> {
///         if self.value + by > 10 { return Err(TooHigh); }
///         Ok(vec![Incremented { by: *by }.into()])
///     }
///
///     fn evolve(&mut self, event: &CounterEvent) {
///         match event { CounterEvent::Incremented(e) => self.value += e.by }
///     }
/// }
/// ```
pub trait Aggregate: Default + Send + 'static {
    /// The category of this aggregate's streams (the prefix of its stream ids).
    const CATEGORY: &'static str;
    /// What it can be asked to do.
    type Command: Send + Sync;
    /// What it records.
    type Event: DomainEvent;
    /// Why it refuses a command.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Decides on a command: the events to record, or why not.
    fn decide(&self, command: &Self::Command) -> Result<Vec<Self::Event>, Self::Error>;

    /// Applies one of its events to its state.
    fn evolve(&mut self, event: &Self::Event);

    /// Whether a command normally starts a new stream (placing an order, opening an
    /// account). A hint for speed, never a rule: when true, the command handler decides on
    /// the empty state without reading the stream; if the stream exists after all, the
    /// append conflicts and the handler reads the stream and decides again, so the
    /// outcome is the same as without the hint. Default: false.
    fn creates_stream(_command: &Self::Command) -> bool {
        false
    }

    /// Rebuilds a state from a sequence of events, starting from `Default`.
    fn replay<'a, I>(events: I) -> Self
    where
        I: IntoIterator<Item = &'a Self::Event>,
    {
        let mut state = Self::default();
        for event in events {
            state.evolve(event);
        }
        state
    }
}

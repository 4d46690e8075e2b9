//! The domain of the KV projection tests: counters that are added to and closed, and the
//! document each stream's key holds.

use serde::{Deserialize, Serialize};
use tidemark::Envelope;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Added {
    pub amount: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Closed {}

tidemark::domain_events! {
    #[derive(Debug, Clone, PartialEq)]
    pub enum CounterEvent {
        Added(Added) = ("Added", 1),
        Closed(Closed) = ("Closed", 1),
    }
}

/// One counter's state. `trail` depends on the order of the amounts, so a document built
/// from events applied out of order, or twice, differs from the right one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Counter {
    pub total: i64,
    pub events: u64,
    pub trail: i64,
}

impl Counter {
    pub(crate) fn add(mut self, amount: i64) -> Self {
        self.total += amount;
        self.events += 1;
        self.trail = self.trail.wrapping_mul(31).wrapping_add(amount);
        self
    }
}

/// The projection's pure function: `Closed` deletes the key, `Added` (re)creates it.
pub(crate) fn evolve(counter: Option<Counter>, event: &Envelope<CounterEvent>) -> Option<Counter> {
    match &event.event {
        CounterEvent::Added(added) => Some(counter.unwrap_or_default().add(added.amount)),
        CounterEvent::Closed(_) => None,
    }
}

//! A given/when/then harness for aggregates.
//!
//! The steps are types, so they can only be written in order:
//!
//! ```
//! # use serde::{Deserialize, Serialize};
//! # use tidemark::Aggregate;
//! # #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
//! # pub struct Incremented { pub by: u32 }
//! # tidemark::domain_events! {
//! #     #[derive(Debug, Clone, PartialEq)]
//! #     pub enum CounterEvent { Incremented(Incremented) = ("Incremented", 1) }
//! # }
//! # #[derive(Debug, thiserror::Error, PartialEq)]
//! # #[error("too high")]
//! # pub struct TooHigh;
//! # #[derive(Default)]
//! # pub struct Counter { value: u32 }
//! # impl Aggregate for Counter {
//! #     const CATEGORY: &'static str = "counter";
//! #     type Command = u32;
//! #     type Event = CounterEvent;
//! #     type Error = TooHigh;
//! #     fn decide(&self, by: &u32) -> Result<Vec<CounterEvent>, TooHigh> {
//! #         if self.value + by > 10 { return Err(TooHigh); }
//! #         Ok(vec![Incremented { by: *by }.into()])
//! #     }
//! #     fn evolve(&mut self, event: &CounterEvent) {
//! #         match event { CounterEvent::Incremented(e) => self.value += e.by }
//! #     }
//! # }
//! use tidemark::AggregateTest;
//!
//! AggregateTest::<Counter>::given([Incremented { by: 8 }.into()])
//!     .when(2)
//!     .then([Incremented { by: 2 }.into()]);
//!
//! AggregateTest::<Counter>::given([Incremented { by: 8 }.into()])
//!     .when(3)
//!     .then_error(TooHigh);
//! ```

use std::fmt::Debug;
use std::marker::PhantomData;

use crate::aggregate::Aggregate;

/// Entry point of the harness.
#[derive(Debug)]
pub struct AggregateTest<A>(PhantomData<A>);

/// The state built from past events.
#[derive(Debug)]
pub struct Given<A: Aggregate> {
    state: A,
}

/// The decision on a command.
#[derive(Debug)]
pub struct When<A: Aggregate> {
    state: A,
    result: Result<Vec<A::Event>, A::Error>,
}

impl<A: Aggregate> AggregateTest<A> {
    /// Starts from these past events.
    pub fn given(events: impl IntoIterator<Item = A::Event>) -> Given<A> {
        let mut state = A::default();
        for event in events {
            state.evolve(&event);
        }
        Given { state }
    }

    /// Starts from no events.
    pub fn given_no_events() -> Given<A> {
        Given { state: A::default() }
    }
}

impl<A: Aggregate> Given<A> {
    /// Decides on a command.
    pub fn when(self, command: A::Command) -> When<A> {
        let result = self.state.decide(&command);
        When { state: self.state, result }
    }
}

impl<A: Aggregate> When<A>
where
    A::Event: Debug + PartialEq,
    A::Error: PartialEq,
{
    /// Asserts that exactly these events were decided; returns the state after them.
    #[track_caller]
    pub fn then(self, expected: impl IntoIterator<Item = A::Event>) -> A {
        let expected: Vec<_> = expected.into_iter().collect();
        match self.result {
            Ok(events) => {
                assert_eq!(events, expected, "the command decided other events than expected");
                let mut state = self.state;
                for event in &events {
                    state.evolve(event);
                }
                state
            }
            Err(e) => panic!("expected events {expected:?}, but the command was rejected: {e:?}"),
        }
    }

    /// Asserts that the command was rejected with this error.
    #[track_caller]
    pub fn then_error(self, expected: A::Error) {
        match self.result {
            Ok(events) => panic!("expected rejection {expected:?}, but the command decided {events:?}"),
            Err(e) => assert_eq!(e, expected, "the command was rejected with another error"),
        }
    }
}

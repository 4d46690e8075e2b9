//! Cross-crate integration tests for tidemark.
//!
//! - [`contract`]: the one contract suite every [`tidemark::EventStore`] must pass, run
//!   per store with [`contract_tests!`];
//! - [`bank`]: a sample aggregate with real rules, used by several test files;
//! - [`faults`]: the fault-injection harness (processes to kill, and the checks after).

pub mod bank;
pub mod contract;
pub mod faults;

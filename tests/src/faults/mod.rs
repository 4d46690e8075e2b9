//! The fault-injection harness: a deployment of real processes (relays, projection runners, a
//! load generator) that tests kill with SIGKILL at random moments, and the checks that prove
//! nothing was lost, duplicated or reordered afterwards.
//!
//! - [`ledger`]: the events and the projection under test, which records every version it
//!   applies, in the order it applies them;
//! - [`deployment`]: what every process builds from the same [`FaultConfig`];
//! - [`node`]: the roles of the `fault-node` binary (`relay`, `runner`, `load`);
//! - [`verify`]: the checks, with the counts they report.

pub mod deployment;
pub mod ledger;
pub mod node;
pub mod verify;

pub use deployment::FaultConfig;
pub use verify::Counts;

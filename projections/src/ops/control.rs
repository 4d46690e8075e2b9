//! The ops commands that steer running projections: pause and resume.

use std::io::Write;

use serde_json::json;
use tidemark::{EventStore, LogDiagnostics};

use super::command::Output;
use super::run::{emit, unknown};
use super::{Ops, OpsExit};
use crate::error::Result;

impl<S: EventStore + LogDiagnostics> Ops<S> {
    /// `projections pause NAME` (`paused`) and `projections resume NAME`.
    pub(super) async fn pause(
        &self,
        name: &str,
        paused: bool,
        output: Output,
        out: &mut dyn Write,
        err: &mut dyn Write,
    ) -> Result<OpsExit> {
        let Some(projection) = self.find(name) else { return Ok(unknown(name, err)) };
        let changed = projection.set_paused(paused).await?;
        let text = match (paused, changed) {
            (true, true) => format!("paused {name}: its runners take no batch from within a second"),
            (true, false) => format!("{name} was paused already"),
            (false, true) => format!("resumed {name}: its runners go on within a second"),
            (false, false) => format!("{name} was not paused"),
        };
        emit(out, output, &text, || json!({ "projection": name, "paused": paused, "changed": changed }));
        Ok(OpsExit::Done)
    }
}

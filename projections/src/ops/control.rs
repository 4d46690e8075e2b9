//! The ops commands that steer running projections: pause and resume, and replay.

use std::io::Write;

use serde_json::json;
use tidemark::{EventStore, LogDiagnostics};

use super::change::Asked;
use super::command::Output;
use super::run::{emit, unknown};
use super::{Ops, OpsExit};
use crate::error::Result;
use crate::replay::ReplayFrom;

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

    /// `projections replay NAME --from POSITION | --since TIME`.
    pub(super) async fn replay(
        &self,
        name: &str,
        from: ReplayFrom,
        batch_size: usize,
        asked: Asked,
        out: &mut dyn Write,
        err: &mut dyn Write,
    ) -> Result<OpsExit> {
        let Some(projection) = self.find(name) else { return Ok(unknown(name, err)) };
        let start = match from {
            ReplayFrom::After(position) => format!("after {position}"),
            ReplayFrom::Since(time) => format!("recorded since {}", time.to_rfc3339()),
        };
        let question =
            format!("apply the events {start} again to the read model of {name} (safe only if it is idempotent)?");
        if !self.confirm(&question, asked.yes, err) {
            return Ok(OpsExit::Refused);
        }
        let r = projection.replay(from, batch_size).await?;
        let text = format!(
            "replayed {name} from {} through {}: {} events applied again, {} not handled, {} not taken in yet (left to its runners), in {:.2?}",
            r.after, r.through, r.applied, r.skipped, r.not_taken_in, r.elapsed
        );
        emit(out, asked.output, &text, || {
            json!({
                "projection": name, "after": r.after.to_string(), "through": r.through.to_string(),
                "applied": r.applied, "skipped": r.skipped, "not_taken_in": r.not_taken_in,
                "seconds": r.elapsed.as_secs_f64(),
            })
        });
        Ok(OpsExit::Done)
    }
}

//! A command decided once, on the state its request was checked against: the events to
//! append and the stream version they follow. The task that executes it only appends, at
//! that version, so a stream that moved on in between is a conflict, never a second
//! decision on a state the client did not see.

use tidemark::{Aggregate, AppendRequest, CommandId, ExpectedVersion, Metadata, NewEvent, StreamId, StreamVersion};

use crate::error::ApiError;

/// The events a command produced, ready to append at the version they were decided on.
#[derive(Debug)]
pub struct Decision {
    append: AppendRequest,
}

/// Who asked for a command, and under which id: what its events carry.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    /// The command's id: the append is recorded under it.
    pub command_id: CommandId,
    /// The user name the events carry in their metadata.
    pub user: &'a str,
    /// The tenant the events carry in their metadata (`None`: the default tenant, no
    /// tenant). A stream keeps the tenant of its first event.
    pub tenant: Option<&'a str>,
}

impl Decision {
    /// Decides `command` on `state`, which is `stream` at `version`. The aggregate's
    /// refusal is a 422; an event that cannot be encoded is a 500.
    pub fn new<A: Aggregate>(
        stream: StreamId,
        state: &A,
        version: StreamVersion,
        command: &A::Command,
        origin: Origin<'_>,
    ) -> Result<Self, ApiError> {
        let events = state.decide(command).map_err(|e| ApiError::Invalid(e.to_string()))?;
        let metadata = metadata(origin);
        let events = events
            .iter()
            .map(|event| NewEvent::from_domain(event, metadata.clone()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ApiError::Internal(format!("cannot encode an event of {stream}: {e}")))?;
        let append = AppendRequest::new(stream, ExpectedVersion::Exact(version), events);
        Ok(Self { append: append.with_command_id(origin.command_id) })
    }

    /// The stream version the command was decided on.
    pub fn version(&self) -> ExpectedVersion {
        self.append.expected
    }

    /// The append: at the decided version, under the command's id.
    pub(super) fn into_append(self) -> AppendRequest {
        self.append
    }
}

/// The events' metadata: the user, the command's id as correlation and causation id, and
/// a child of the current trace context, if any (what the command handler gives a
/// command's events).
fn metadata(origin: Origin<'_>) -> Metadata {
    let mut metadata = Metadata::new()
        .with_user(origin.user)
        .with_correlation_id(origin.command_id.0)
        .with_causation_id(origin.command_id.0);
    metadata.tenant = origin.tenant.map(str::to_owned);
    tidemark::trace::stamp(&mut metadata);
    metadata
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{order_stream, Order, OrderCommand};

    #[test]
    fn a_refused_command_is_invalid_and_an_accepted_one_appends_at_its_version() {
        let origin = Origin { command_id: CommandId::new(), user: "ada", tenant: None };
        let stream = order_stream(uuid::Uuid::now_v7());
        let refused =
            Decision::new(stream.clone(), &Order::default(), StreamVersion(0), &OrderCommand::Confirm, origin);
        assert!(matches!(refused, Err(ApiError::Invalid(_))), "{refused:?}");

        let state = Order::default();
        let place = OrderCommand::Place {
            customer: "ada".into(),
            lines: vec![crate::domain::Line::new("tea", 1, 100)],
            currency: crate::domain::Currency::new("EUR").expect("EUR"),
            delivery: None,
        };
        let decision = Decision::new(stream.clone(), &state, StreamVersion(0), &place, origin).expect("placed");
        assert_eq!(decision.version(), ExpectedVersion::Exact(StreamVersion(0)));
        let append = decision.into_append();
        assert_eq!((append.stream_id, append.command_id), (stream, Some(origin.command_id)));
        let user = append.events.iter().map(|e| e.metadata.user.as_deref()).collect::<Vec<_>>();
        assert_eq!(user, vec![Some("ada")]);
        assert_eq!(append.events[0].metadata.correlation_id, Some(origin.command_id.0));
    }
}

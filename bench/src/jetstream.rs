//! The run's JetStream streams (unique names, deleted at the end), a JetStream context set up
//! as the relay sets up its own, and a listener timing each message's arrival by its
//! `Nats-Msg-Id`.

use async_nats::jetstream::context::ContextBuilder;
use async_nats::jetstream::Context;
use futures_util::StreamExt;
use tidemark_nats::RelayConfig;

/// JetStream streams and subject prefixes of one run, unique so that runs never share
/// a stream (every one is deleted at the end).
#[derive(Debug, Clone)]
pub(crate) struct Names {
    pub relay_stream: String,
    pub relay_prefix: String,
    pub raw_stream: String,
    pub raw_prefix: String,
    /// F4's streams: one per partition count, `<f4_stream>_P<n>`.
    pub f4_stream: String,
    f4_prefix: String,
    /// F6: tidemark's pipeline and the raw one.
    pub f6_stream: String,
    pub f6_prefix: String,
    pub f6_raw_stream: String,
    pub f6_raw_prefix: String,
}

impl Names {
    pub(crate) fn new() -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let id = &id[..12];
        Self {
            relay_stream: format!("TMBENCH_F3_{id}"),
            relay_prefix: format!("tmbench.f3-{id}"),
            raw_stream: format!("TMBENCH_RAW_{id}"),
            raw_prefix: format!("tmbench.raw-{id}"),
            f4_stream: format!("TMBENCH_F4_{id}"),
            f4_prefix: format!("tmbench.f4-{id}"),
            f6_stream: format!("TMBENCH_F6_{id}"),
            f6_prefix: format!("tmbench.f6-{id}"),
            f6_raw_stream: format!("TMBENCH_F6RAW_{id}"),
            f6_raw_prefix: format!("tmbench.f6raw-{id}"),
        }
    }

    /// F4's stream for `partitions` partitions.
    pub(crate) fn f4_stream(&self, partitions: u32) -> String {
        format!("{}_P{partitions}", self.f4_stream)
    }

    /// F4's subject prefix for `partitions` partitions.
    pub(crate) fn f4_prefix(&self, partitions: u32) -> String {
        format!("{}-p{partitions}", self.f4_prefix)
    }
}

/// Deletes the run's streams, those that exist; reports (but does not fail on) errors.
pub(crate) async fn delete_streams(nats_url: &str, names: &Names) {
    let Ok(client) = async_nats::connect(nats_url).await else { return };
    let js = async_nats::jetstream::new(client);
    let mut streams = vec![
        names.relay_stream.clone(),
        names.raw_stream.clone(),
        names.f6_stream.clone(),
        names.f6_raw_stream.clone(),
    ];
    let mut all = js.stream_names();
    while let Some(Ok(name)) = all.next().await {
        if name.starts_with(&names.f4_stream) {
            streams.push(name);
        }
    }
    for stream in &streams {
        if js.get_stream(stream).await.is_ok() {
            if let Err(error) = js.delete_stream(stream).await {
                eprintln!("could not delete JetStream stream {stream}: {error}");
            }
        }
    }
}

/// A JetStream context set up as `NatsRelay::new` sets up its own: the relay's publish
/// timeout, and at most twice its PubAck window pending in the client.
pub(crate) fn context(client: async_nats::Client, config: &RelayConfig) -> Context {
    ContextBuilder::new()
        .timeout(config.publish_timeout)
        .ack_timeout(config.publish_timeout)
        .max_ack_inflight(config.max_in_flight.saturating_mul(2))
        .build(client)
}

/// Forwards each message of `subscription` that carries a `Nats-Msg-Id` as (that id, when
/// it arrived), until the receiver is dropped; abort the task to stop it sooner.
pub(crate) fn arrivals(
    mut subscription: async_nats::Subscriber,
) -> (tokio::task::JoinHandle<()>, tokio::sync::mpsc::UnboundedReceiver<(String, tokio::time::Instant)>) {
    let (sender, arrivals) = tokio::sync::mpsc::unbounded_channel();
    let listening = tokio::spawn(async move {
        while let Some(message) = subscription.next().await {
            let at = tokio::time::Instant::now();
            let id = message.headers.as_ref().and_then(|h| h.get(tidemark_nats::HEADER_MSG_ID));
            if let Some(id) = id {
                if sender.send((id.as_str().to_owned(), at)).is_err() {
                    break;
                }
            }
        }
    });
    (listening, arrivals)
}

#[cfg(test)]
mod tests {
    use tidemark_nats::SubjectScheme;

    use super::*;

    #[test]
    fn every_prefix_makes_a_valid_subject_scheme() {
        let names = Names::new();
        assert!(SubjectScheme::new(names.f4_prefix(4), 4).is_ok());
        assert!(SubjectScheme::new(names.relay_prefix, 16).is_ok());
        assert!(SubjectScheme::new(names.raw_prefix, 16).is_ok());
    }
}

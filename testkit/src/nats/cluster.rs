//! [`NatsCluster`]: a throwaway JetStream cluster of nats-server processes on loopback ports.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tempfile::TempDir;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::server::read_info;
use crate::binaries::nats_server;
use crate::net::free_port;
use crate::process::{log_tail, ServerProcess, POLL_INTERVAL};

/// How long a node may take to greet clients, and the cluster to elect its JetStream meta leader.
const START_DEADLINE: Duration = Duration::from_secs(30);

/// How many times a start tries again with fresh ports when a node exits early (a port taken).
const START_ATTEMPTS: u32 = 5;

/// One node: its ports stay the same across restarts, and so does its JetStream store.
#[derive(Debug)]
struct Node {
    name: String,
    port: u16,
    route_port: u16,
    monitor_port: u16,
    process: Option<ServerProcess>,
}

/// A private JetStream cluster of `size` nats-server nodes (`n1`, `n2`, …) routed to each other
/// on loopback ports, for tests that kill nodes, including a stream's leader, and the whole
/// cluster. Streams created with `num_replicas` up to `size` spread over it.
///
/// Dropping the value kills every node and deletes its files; if the test process dies first,
/// a watchdog per node does the same.
///
/// ```no_run
/// # async fn demo() {
/// let mut cluster = tidemark_testkit::NatsCluster::start(3).await;
/// let client = cluster.urls(); // ["nats://127.0.0.1:<port>", …]: give a client all of them
/// cluster.kill(0);
/// cluster.restart(0).await;
/// # }
/// ```
#[derive(Debug)]
pub struct NatsCluster {
    dir: TempDir,
    bin: PathBuf,
    nodes: Vec<Node>,
}

impl NatsCluster {
    /// Starts `size` nodes (at least one) and returns once each greets clients with JetStream
    /// enabled and the cluster has a JetStream meta leader.
    ///
    /// # Panics
    ///
    /// Panics with the nodes' logs when nats-server is not installed or the cluster does not come
    /// up within 30 s.
    pub async fn start(size: usize) -> Self {
        match Self::try_start(size.max(1)).await {
            Ok(cluster) => cluster,
            Err(e) => panic!(
                "tidemark-testkit: cannot start a throwaway NATS cluster: {e}\n\
                 Install nats-server with `apt-get install -y nats-server`."
            ),
        }
    }

    async fn try_start(size: usize) -> Result<Self, String> {
        let bin = nats_server()?;
        let dir = tempfile::Builder::new()
            .prefix("tidemark-nats-cluster-")
            .tempdir()
            .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
        let mut cluster = Self { dir, bin, nodes: Vec::new() };
        let mut failure = String::new();
        for _ in 0..START_ATTEMPTS {
            cluster.nodes = (1..=size)
                .map(|n| Node {
                    name: format!("n{n}"),
                    port: free_port(),
                    route_port: free_port(),
                    monitor_port: free_port(),
                    process: None,
                })
                .collect();
            match cluster.launch_all().await {
                Ok(()) => return Ok(cluster),
                Err(e) => {
                    failure = e;
                    for index in 0..cluster.nodes.len() {
                        cluster.kill(index);
                    }
                }
            }
        }
        Err(failure)
    }

    /// How many nodes the cluster has.
    pub fn size(&self) -> usize {
        self.nodes.len()
    }

    /// Every node's client URL, `nats://127.0.0.1:<port>`, in node order.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(|node| format!("nats://127.0.0.1:{}", node.port)).collect()
    }

    /// The client URLs joined with commas.
    pub fn url_list(&self) -> String {
        self.urls().join(",")
    }

    /// The server name of node `index` (`n1` for index 0), as JetStream reports leaders.
    ///
    /// # Panics
    ///
    /// Panics when `index` is not a node of this cluster.
    pub fn name(&self, index: usize) -> &str {
        &self.nodes[index].name
    }

    /// The index of the node with this server name.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|node| node.name == name)
    }

    /// Whether node `index` runs (it has not been killed or stopped, and has not exited).
    pub fn is_running(&mut self, index: usize) -> bool {
        match self.nodes.get_mut(index).and_then(|node| node.process.as_mut()) {
            Some(process) => process.exit_status().is_none(),
            None => false,
        }
    }

    /// Kills node `index` with SIGKILL, like a crash. Does nothing if it is not running.
    pub fn kill(&mut self, index: usize) {
        if let Some(process) = self.nodes.get_mut(index).and_then(|node| node.process.take()) {
            process.kill();
        }
    }

    /// Shuts node `index` down cleanly (SIGINT) and waits until it has exited.
    pub async fn stop(&mut self, index: usize) {
        if let Some(process) = self.nodes.get_mut(index).and_then(|node| node.process.take()) {
            process.interrupt().await;
        }
    }

    /// Starts node `index` again on its ports with its JetStream store (stopping it first if
    /// it runs); returns once it greets clients.
    ///
    /// # Panics
    ///
    /// Panics with the node's log when it does not come up within 30 s.
    pub async fn restart(&mut self, index: usize) {
        self.stop(index).await;
        let deadline = Instant::now() + START_DEADLINE;
        if let Err(e) = self.launch(index, deadline).await {
            panic!("tidemark-testkit: cannot restart NATS node {index}: {e}");
        }
    }

    /// Starts every node that is not running, then waits for a JetStream meta leader.
    ///
    /// # Panics
    ///
    /// Panics with the logs when the cluster is not back within 30 s.
    pub async fn restart_all(&mut self) {
        let deadline = Instant::now() + START_DEADLINE;
        let result = async {
            for index in 0..self.nodes.len() {
                if !self.is_running(index) {
                    self.kill(index);
                    self.spawn_node(index)?;
                }
            }
            self.wait_ready(deadline).await
        }
        .await;
        if let Err(e) = result {
            panic!("tidemark-testkit: cannot restart the NATS cluster: {e}");
        }
    }

    /// The server name of the JetStream meta leader as node `index` sees it, if it knows one.
    pub async fn meta_leader(&self, index: usize) -> Option<String> {
        let node = self.nodes.get(index)?;
        let body = http_get(node.monitor_port, "/jsz").await.ok()?;
        meta_leader_of(&body)
    }

    async fn launch_all(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_DEADLINE;
        for index in 0..self.nodes.len() {
            self.spawn_node(index)?;
        }
        self.wait_ready(deadline).await
    }

    async fn launch(&mut self, index: usize, deadline: Instant) -> Result<(), String> {
        self.spawn_node(index)?;
        self.wait_greeting(index, deadline).await
    }

    /// Every node greets, and a running node knows a meta leader.
    async fn wait_ready(&mut self, deadline: Instant) -> Result<(), String> {
        for index in 0..self.nodes.len() {
            self.wait_greeting(index, deadline).await?;
        }
        loop {
            if self.meta_leader(0).await.is_some() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("no JetStream meta leader after {START_DEADLINE:?}\n{}", self.logs()));
            }
            tokio::time::sleep(POLL_INTERVAL * 5).await;
        }
    }

    async fn wait_greeting(&mut self, index: usize, deadline: Instant) -> Result<(), String> {
        let port = self.nodes[index].port;
        loop {
            if let Some(status) = self.nodes[index].process.as_mut().and_then(ServerProcess::exit_status) {
                return Err(format!("node {index} exited ({status})\n{}", log_tail(&self.log_path(index))));
            }
            if let Ok(Ok(info)) = tokio::time::timeout(Duration::from_secs(2), read_info(port)).await {
                if info.contains("\"jetstream\":true") {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                return Err(format!("node {index} not ready\n{}", log_tail(&self.log_path(index))));
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    fn log_path(&self, index: usize) -> PathBuf {
        self.dir.path().join(format!("{}.log", self.nodes[index].name))
    }

    fn logs(&self) -> String {
        (0..self.nodes.len()).map(|index| log_tail(&self.log_path(index))).collect::<Vec<_>>().join("\n")
    }

    fn spawn_node(&mut self, index: usize) -> Result<(), String> {
        let config = self.config(index);
        let node = &self.nodes[index];
        let path = self.dir.path().join(format!("{}.conf", node.name));
        std::fs::write(&path, config).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        let mut cmd = Command::new(&self.bin);
        cmd.arg("-c").arg(&path).current_dir(self.dir.path());
        let process = ServerProcess::spawn(cmd, &self.log_path(index), self.dir.path())
            .map_err(|e| format!("cannot spawn {}: {e}", self.bin.display()))?;
        self.nodes[index].process = Some(process);
        Ok(())
    }

    fn config(&self, index: usize) -> String {
        let node = &self.nodes[index];
        let store = store_dir(self.dir.path(), &node.name);
        let mut routes = String::new();
        for other in &self.nodes {
            let _ = writeln!(routes, "    \"nats-route://127.0.0.1:{}\"", other.route_port);
        }
        format!(
            "server_name: {name}\nlisten: \"127.0.0.1:{port}\"\nhttp: \"127.0.0.1:{monitor}\"\n\
             jetstream {{\n  store_dir: {store:?}\n}}\n\
             cluster {{\n  name: tidemark-test\n  listen: \"127.0.0.1:{route}\"\n  routes: [\n{routes}  ]\n}}\n",
            name = node.name,
            port = node.port,
            monitor = node.monitor_port,
            route = node.route_port,
            store = store.display().to_string(),
        )
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for index in 0..self.nodes.len() {
            self.kill(index);
        }
    }
}

fn store_dir(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("store-{name}"))
}

/// The body of a plain HTTP/1.0 GET of `path` on the node's monitoring port.
async fn http_get(port: u16, path: &str) -> std::io::Result<String> {
    let exchange = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
        stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes()).await?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    let response = tokio::time::timeout(Duration::from_secs(2), exchange)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "monitoring endpoint did not answer"))??;
    Ok(response.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default())
}

/// The `leader` of the `meta_cluster` object in a `/jsz` answer.
fn meta_leader_of(body: &str) -> Option<String> {
    let json: serde_json::Value = serde_json::from_str(body).ok()?;
    let leader = json.get("meta_cluster")?.get("leader")?.as_str()?;
    (!leader.is_empty()).then(|| leader.to_owned())
}

#[cfg(test)]
mod tests {
    use super::meta_leader_of;

    #[test]
    fn the_meta_leader_is_read_from_jsz() {
        let body = r#"{"server_id":"x","meta_cluster":{"name":"c","leader":"n2","cluster_size":3}}"#;
        assert_eq!(meta_leader_of(body).as_deref(), Some("n2"));
        assert_eq!(meta_leader_of(r#"{"meta_cluster":{"name":"c","leader":""}}"#), None);
        assert_eq!(meta_leader_of(r#"{"server_id":"x"}"#), None);
        assert_eq!(meta_leader_of("not json"), None);
    }
}

//! `fault-node relay|runner|load`: one process of the fault-injection deployment (see
//! `tidemark_tests::faults`). Configured entirely through `FAULT_*` environment variables.

#[tokio::main]
async fn main() {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    }
    let code = tidemark_tests::faults::node::main_with(std::env::args().nth(1)).await;
    std::process::exit(code);
}

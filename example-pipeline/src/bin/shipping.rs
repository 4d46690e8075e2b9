//! The shipping service: requests a shipment for every paid order until Ctrl-C. Start it
//! more than once: the instances share the partitions.
//!
//! `cargo run -p example-pipeline --bin shipping` (after `--bin intake` has migrated)

use example_pipeline::{Settings, Shipping};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let shipping = Shipping::connect(&Settings::from_env()).await?;
    shipping.migrate().await?; // an app would do this in a deployment step
    let shutdown = CancellationToken::new();
    let running = tokio::spawn({
        let (shipping, stop) = (shipping.clone(), shutdown.clone());
        async move { shipping.run(stop).await }
    });
    println!("shipping paid orders; Ctrl-C stops");
    tokio::signal::ctrl_c().await?;
    shutdown.cancel();
    running.await??;
    Ok(())
}

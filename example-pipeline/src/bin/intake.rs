//! The intake service: places and pays a few orders, then relays until Ctrl-C.
//!
//! `cargo run -p example-pipeline --bin intake`

use example_pipeline::{Intake, Settings};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let settings = Settings::from_env();
    let intake = Intake::connect(&settings).await?;
    intake.migrate(&settings).await?; // an app would do this in a deployment step
    let shutdown = CancellationToken::new();
    let relaying = tokio::spawn({
        let (intake, stop) = (intake.clone(), shutdown.clone());
        async move { intake.run(stop).await }
    });
    for total_cents in [1_200, 3_050, 725] {
        let order = intake.place(total_cents).await?;
        intake.pay(&order).await?;
        println!("placed and paid {order}");
    }
    println!("relaying; Ctrl-C stops");
    tokio::signal::ctrl_c().await?;
    shutdown.cancel();
    relaying.await??;
    Ok(())
}

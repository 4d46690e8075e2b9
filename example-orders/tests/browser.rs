//! End to end in a browser: the page served at `/`, driven in headless Chromium through
//! chromedriver (Debian's `chromium` and `chromium-driver`: `./scripts/test --with-browser`
//! installs them) against the embedded app on a real socket.
#![cfg(unix)]

#[path = "support/page.rs"]
mod page;
mod support;
#[path = "support/webdriver.rs"]
mod webdriver;

use serde_json::json;

use page::{log_in, open_page, place_order, serve, wait_connected, wait_page, wait_placed, FETCH_ORDER};
use webdriver::{Browser, Chromedriver};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_places_orders_toasts_outcomes_and_follows_changes_live() {
    let (app, address) = serve().await;
    let driver = Chromedriver::start().await;

    // Alice places an order through the form; the outcome reaches her page over the WebSocket.
    let alice = Browser::open(&driver).await;
    open_page(&alice, address).await;
    log_in(&alice, "alice").await;
    place_order(&alice, "earl-grey", 2, 450).await;
    let order = wait_placed(&alice, "alice").await;
    assert_eq!(order.total, "9.00 EUR");

    // A second window of hers logs in with the token the first stored, and lists the order.
    let first = alice.window().await;
    let second = alice.new_window().await;
    open_page(&alice, address).await;
    wait_connected(&alice, "alice").await;
    wait_page(&alice, "the second window lists the order as placed", |page| {
        (page.status_of(&order.id)? == "placed").then_some(())
    })
    .await;

    // Confirmed in the first window, the order turns confirmed in the second without a reload
    // (`wait_page` fails on one), and the outcome is toasted there too.
    alice.switch_to(&first).await;
    alice.click(&format!(r#"tr[data-order-id="{}"] button[data-action="confirm"]"#, order.id)).await;
    alice.switch_to(&second).await;
    wait_page(&alice, "the second window shows the order confirmed and toasts the outcome", |page| {
        (page.status_of(&order.id)? == "confirmed" && page.toasted_success(2)).then_some(())
    })
    .await;
    alice.switch_to(&first).await;
    wait_page(&alice, "the first window shows the order confirmed", |page| {
        (page.status_of(&order.id)? == "confirmed" && page.toasted_success(2)).then_some(())
    })
    .await;

    // Bob, in a browser of his own, lists only his own order and cannot read Alice's.
    let bob = Browser::open(&driver).await;
    open_page(&bob, address).await;
    log_in(&bob, "bob").await;
    place_order(&bob, "mug", 1, 1200).await;
    let bobs = wait_placed(&bob, "bob").await;
    assert_ne!(bobs.id, order.id);
    assert_eq!(bobs.total, "12.00 EUR");
    let status: serde_json::Value = bob.script_async(FETCH_ORDER, vec![json!(order.id)]).await;
    assert_eq!(status, json!(404), "bob reading alice's order");

    alice.close().await;
    bob.close().await;
    drop(driver);
    app.stop().await;
}

//! The page in headless Chromium, past the first order: logging in twice in one tab keeps
//! one socket, an expired or refused token is shown with a way to log in again, chaos mode
//! is ridden out by the page's retries, and an admin finishes the journey (fulfilment queue,
//! dispatch, sales) in the browser.
#![cfg(unix)]

#[path = "support/page.rs"]
mod page;
mod support;
#[path = "support/webdriver.rs"]
mod webdriver;

use std::time::Duration;

use example_orders::app::AppConfig;
use example_orders::auth::{TokenKeys, DEFAULT_TOKEN_TTL};
use serde_json::json;

use page::{log_in, open_page, place_order, serve, serve_with, snapshot, wait_connected, wait_page, wait_placed};
use webdriver::{eventually, Browser, Chromedriver};

/// Puts `token` where the page keeps it, then loads the page again.
async fn reload_with_token(browser: &Browser, address: std::net::SocketAddr, token: &str) {
    browser
        .script::<serde_json::Value>(r#"localStorage.setItem("orders-token", arguments[0]);"#, vec![json!(token)])
        .await;
    open_page(browser, address).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_login_keeps_one_socket_and_a_bad_token_offers_to_log_in_again() {
    let (app, address) = serve().await;
    let driver = Chromedriver::start().await;
    let browser = Browser::open(&driver).await;
    open_page(&browser, address).await;
    log_in(&browser, "alice").await;
    let hub = app.app.hub().clone();
    assert_eq!(snapshot(&browser).await.sockets_opened, 1);

    // Logging in again in the same tab replaces the socket: the old one closes without
    // scheduling a reconnect of its own, so the tab settles on one socket.
    log_in(&browser, "bob").await;
    eventually("alice's socket is gone and bob holds one", || async {
        let counts = (hub.sockets("alice"), hub.sockets("bob"));
        (counts == (0, 1)).then_some(()).ok_or(format!("{counts:?}"))
    })
    .await;
    let connected = snapshot(&browser).await.connection;
    place_order(&browser, "mug", 1, 1200).await;
    wait_placed(&browser, "bob").await;
    let page = snapshot(&browser).await;
    assert_eq!((page.sockets_opened, page.connection), (2, connected), "no socket was opened since");
    assert_eq!((hub.sockets("alice"), hub.sockets("bob")), (0, 1));

    // A token signed with another secret: the upgrade is refused, the page asks the server
    // why, says so, and stops reconnecting.
    let forged = TokenKeys::new([7; 32]).expect("keys").issue("bob", false, DEFAULT_TOKEN_TTL).expect("token");
    reload_with_token(&browser, address, &forged).await;
    let page = wait_page(&browser, "the page says the token was refused", |page| page.signed_out.clone()).await;
    assert!(page.contains("refused your token"), "{page}");
    assert_eq!(snapshot(&browser).await.sockets_opened, 1, "one refused socket, no reconnects");

    // An expired token is caught before any socket is opened.
    let expired = TokenKeys::dev().issue("bob", false, Duration::ZERO).expect("token");
    reload_with_token(&browser, address, &expired).await;
    let page = wait_page(&browser, "the page says the session expired", |page| page.signed_out.clone()).await;
    assert!(page.contains("expired"), "{page}");
    assert_eq!(snapshot(&browser).await.sockets_opened, 0);

    // A token that expires while the page uses it: the page signs out and closes its socket.
    let short = TokenKeys::dev().issue("bob", false, Duration::from_secs(4)).expect("token");
    reload_with_token(&browser, address, &short).await;
    wait_connected(&browser, "bob").await;
    let page = wait_page(&browser, "the page says the session expired", |page| page.signed_out.clone()).await;
    assert!(page.contains("expired"), "{page}");
    eventually("the expired session's socket is closed", || async {
        (hub.sockets("bob") == 0).then_some(()).ok_or(format!("bob holds {} sockets", hub.sockets("bob")))
    })
    .await;

    // "Log in again" leads back to the login, and logging in clears the notice.
    browser.click("#log-in-again").await;
    log_in(&browser, "bob").await;
    // The socket connects before the page has fetched the order list, so wait for the list.
    let signed_out = wait_page(&browser, "bob's order is listed again", |page| {
        page.single_order().is_some().then(|| page.signed_out.clone())
    })
    .await;
    assert_eq!(signed_out, None, "logging in clears the notice");

    browser.close().await;
    drop(driver);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_mode_is_ridden_out_by_the_pages_retries_without_duplicates() {
    let (app, address) = serve_with(AppConfig::default().chaos(0.3)).await;
    let driver = Chromedriver::start().await;
    let browser = Browser::open(&driver).await;
    open_page(&browser, address).await;
    log_in(&browser, "carol").await;

    // With 30 % of commands failing (half of them after they ran), placing orders until the
    // page has retried twice; each placement must give exactly one order.
    let mut placed = 0;
    let mut retries = 0;
    while placed < 25 && (retries < 2 || placed < 3) {
        place_order(&browser, &format!("tea-{placed}"), 1, 100).await;
        placed += 1;
        let page = wait_page(&browser, &format!("{placed} orders are listed"), |page| {
            (page.orders.len() >= placed && page.orders.iter().all(|o| o.status == "placed"))
                .then_some(page.orders.len())
        })
        .await;
        assert_eq!(page, placed, "a retried command placed a second order");
        let page = snapshot(&browser).await;
        retries = page.toasts.iter().filter(|t| t.kind == "info" && t.text.starts_with("retrying")).count();
    }
    assert!(retries >= 2, "chaos 0.3 and {placed} orders, yet the page never retried");
    let page = snapshot(&browser).await;
    assert_eq!(page.orders.len(), placed);

    browser.close().await;
    drop(driver);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_goes_from_placed_to_shipped_in_the_browser_with_an_admin() {
    let (app, address) = serve().await;
    let driver = Chromedriver::start().await;
    let alice = Browser::open(&driver).await;
    open_page(&alice, address).await;
    log_in(&alice, "alice").await;
    assert!(!snapshot(&alice).await.admin_view, "no admin view for customers");

    // Amounts in the currency's minor units: cents for EUR, yen for JPY.
    place_order(&alice, "earl-grey", 2, 450).await;
    let order = wait_placed(&alice, "alice").await;
    assert_eq!((order.total.as_str(), order.items.as_str()), ("9.00 EUR", "2 × earl-grey @ 4.50 EUR"));
    alice.fill("#currency", "JPY").await;
    place_order(&alice, "mug", 1, 1200).await;
    let yen = wait_page(&alice, "the JPY order is listed", |page| {
        page.orders.iter().find(|o| o.id != order.id && o.items.contains("mug")).cloned()
    })
    .await;
    assert_eq!((yen.total.as_str(), yen.items.as_str()), ("1200 JPY", "1 × mug @ 1200 JPY"));

    let on = |action: &str| format!(r#"#orders tr[data-order-id="{}"] button[data-action="{action}"]"#, order.id);
    alice.click(&on("confirm")).await;
    wait_page(&alice, "the order is confirmed", |page| (page.status_of(&order.id)? == "confirmed").then_some(())).await;
    alice.click(&on("pay")).await;
    wait_page(&alice, "the order is paid", |page| (page.status_of(&order.id)? == "paid").then_some(())).await;

    // The admin sees the paid order in the fulfilment queue, and the sales, and dispatches it.
    let admin = Browser::open(&driver).await;
    open_page(&admin, address).await;
    admin.click("#admin").await;
    log_in(&admin, "ops").await;
    wait_page(&admin, "the paid order is in the fulfilment queue", |page| {
        (page.admin_view && page.queue.contains(&order.id)).then_some(())
    })
    .await;
    let sales = wait_page(&admin, "the sales list earl-grey", |page| {
        page.sales.iter().find(|s| s.product == "earl-grey").cloned()
    })
    .await;
    assert_eq!((sales.units.as_str(), sales.revenue.as_str()), ("2", "9.00 EUR"));
    admin.screenshot("admin-view").await;
    admin.click(&format!(r#"#queue tr[data-order-id="{}"] button[data-action="dispatch"]"#, order.id)).await;
    wait_page(&admin, "the dispatched order leaves the queue", |page| (!page.queue.contains(&order.id)).then_some(()))
        .await;

    // The process manager ships it; Alice's page follows live.
    wait_page(&alice, "alice's page shows the order shipped", |page| {
        (page.status_of(&order.id)? == "shipped").then_some(())
    })
    .await;
    wait_connected(&alice, "alice").await;
    alice.screenshot("customer-shipped").await;

    alice.close().await;
    admin.close().await;
    drop(driver);
    app.stop().await;
}

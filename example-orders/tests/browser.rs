//! End to end in a browser: the page served at `/`, driven in headless Chromium through
//! chromedriver (Debian's `chromium` and `chromium-driver`: `./scripts/test --with-browser`
//! installs them) against the embedded app on a real socket.
#![cfg(unix)]

mod support;
#[path = "support/webdriver.rs"]
mod webdriver;

use std::net::SocketAddr;

use example_orders::app::AppConfig;
use serde::Deserialize;
use serde_json::json;

use webdriver::{eventually, Browser, Chromedriver};

/// Records every toast the page shows (they vanish after 5 s) in `window.toastsSeen`. Run
/// after each page load; a reload drops the recorder, which is how a reload is noticed.
const RECORD_TOASTS: &str = r#"
window.toastsSeen = [];
new MutationObserver((changes) => {
  for (const change of changes)
    for (const node of change.addedNodes) window.toastsSeen.push({ kind: node.dataset.kind, text: node.textContent });
}).observe(document.getElementById("toasts"), { childList: true });
"#;

/// Reads what the page shows in one go, so that a re-render cannot tear it.
const SNAPSHOT: &str = r##"
const field = (tr, name) => tr.querySelector(`[data-field="${name}"]`).textContent;
return {
  connection: document.getElementById("status").textContent,
  orders: Array.from(document.querySelectorAll("#orders tr"), (tr) => ({
    id: tr.dataset.orderId, status: field(tr, "status"), total: field(tr, "total"), version: field(tr, "version"),
  })),
  toasts: window.toastsSeen || [],
  recording: Array.isArray(window.toastsSeen),
};
"##;

/// Asks the server for an order with the token the page holds; answers the HTTP status.
const FETCH_ORDER: &str = r#"
const [orderId, done] = arguments;
fetch(`/orders/${orderId}`, { headers: { authorization: "Bearer " + localStorage.getItem("orders-token") } })
  .then((response) => done(response.status), (error) => done(String(error)));
"#;

#[derive(Debug, Deserialize)]
struct Page {
    connection: String,
    orders: Vec<Row>,
    toasts: Vec<Toast>,
    recording: bool,
}

#[derive(Debug, Clone, Deserialize)]
struct Row {
    id: String,
    status: String,
    total: String,
    version: String,
}

#[derive(Debug, Deserialize)]
struct Toast {
    kind: String,
    text: String,
}

impl Page {
    fn status_of(&self, order_id: &str) -> Option<&str> {
        self.orders.iter().find(|row| row.id == order_id).map(|row| row.status.as_str())
    }

    /// Whether a success toast for a command that left its order at `version` was shown.
    fn toasted_success(&self, version: u32) -> bool {
        let suffix = format!("succeeded (version {version})");
        self.toasts.iter().any(|toast| toast.kind == "success" && toast.text.ends_with(&suffix))
    }

    /// The only order listed, if exactly one is.
    fn single_order(&self) -> Option<&Row> {
        match self.orders.as_slice() {
            [row] => Some(row),
            _ => None,
        }
    }
}

/// Polls the page until `check` gives a value. Fails at once if the page showed a failure
/// toast or was reloaded.
async fn wait_page<T>(browser: &Browser, what: &str, check: impl Fn(&Page) -> Option<T>) -> T {
    let check = &check;
    eventually(what, || async move {
        let page: Page = browser.script(SNAPSHOT, Vec::new()).await;
        assert!(page.recording, "while waiting until {what}: the page was reloaded");
        if let Some(failure) = page.toasts.iter().find(|toast| toast.kind == "failed") {
            panic!("while waiting until {what}: the page showed a failure: {}", failure.text);
        }
        check(&page).ok_or_else(|| format!("{page:#?}"))
    })
    .await
}

async fn open_page(browser: &Browser, address: SocketAddr) {
    browser.goto(&format!("http://{address}/")).await;
    browser.script::<serde_json::Value>(RECORD_TOASTS, Vec::new()).await;
}

async fn wait_connected(browser: &Browser, user: &str) {
    let connected = format!("connected as {user} ");
    wait_page(browser, &format!("the page is connected as {user}"), |page| {
        page.connection.starts_with(&connected).then_some(())
    })
    .await;
}

/// Logs in with the dev login (the app runs without a token secret).
async fn log_in(browser: &Browser, user: &str) {
    browser.fill("#user", user).await;
    browser.click("#login").await;
    wait_connected(browser, user).await;
}

async fn place_order(browser: &Browser, product: &str, quantity: u32, unit_price_minor: u32) {
    browser.fill("#product", product).await;
    browser.fill("#quantity", &quantity.to_string()).await;
    browser.fill("#price", &unit_price_minor.to_string()).await;
    browser.click("#place").await;
}

/// Waits for the success toast of a first command and the one order it placed.
async fn wait_placed(browser: &Browser, who: &str) -> Row {
    wait_page(browser, &format!("{who}'s order is listed as placed and its success toasted"), |page| {
        let row = page.single_order()?;
        (row.status == "placed" && row.version == "1" && page.toasted_success(1)).then(|| row.clone())
    })
    .await
}

async fn serve() -> (support::App, SocketAddr) {
    let (app, router) = support::start(AppConfig::default()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    (app, address)
}

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

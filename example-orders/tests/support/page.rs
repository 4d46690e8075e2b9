#![allow(dead_code)]
//! The page as the browser tests read it: one snapshot of what it shows, and the steps a
//! user takes (log in, place an order), each waiting until the page shows its effect.

use std::net::SocketAddr;

use example_orders::app::AppConfig;
use serde::Deserialize;

use crate::support::{start, App};
use crate::webdriver::{eventually, Browser};

/// Records every toast the page shows (they vanish after 5 s) in `window.toastsSeen`. Run
/// after each page load; a reload drops the recorder, which is how a reload is noticed.
pub(crate) const RECORD_TOASTS: &str = r#"
window.toastsSeen = [];
new MutationObserver((changes) => {
  for (const change of changes)
    for (const node of change.addedNodes) window.toastsSeen.push({ kind: node.dataset.kind, text: node.textContent });
}).observe(document.getElementById("toasts"), { childList: true });
"#;

/// Reads what the page shows in one go, so that a re-render cannot tear it.
pub(crate) const SNAPSHOT: &str = r##"
const field = (tr, name) => tr.querySelector(`[data-field="${name}"]`).textContent;
return {
  connection: document.getElementById("status").textContent,
  orders: Array.from(document.querySelectorAll("#orders tr"), (tr) => ({
    id: tr.dataset.orderId, status: field(tr, "status"), total: field(tr, "total"), version: field(tr, "version"),
    items: field(tr, "items"),
  })),
  queue: Array.from(document.querySelectorAll("#queue tr"), (tr) => tr.dataset.orderId),
  sales: Array.from(document.querySelectorAll("#sales tr"), (tr) => ({
    product: field(tr, "product"), units: field(tr, "units"), revenue: field(tr, "revenue"),
  })),
  admin_view: !document.getElementById("admin-view").hidden,
  signed_out: document.getElementById("auth-problem").hidden ? null : document.getElementById("auth-problem-text").textContent,
  sockets_opened: window.ordersPage.socketsOpened,
  toasts: window.toastsSeen || [],
  recording: Array.isArray(window.toastsSeen),
};
"##;

/// Asks the server for an order with the token the page holds; answers the HTTP status.
pub(crate) const FETCH_ORDER: &str = r#"
const [orderId, done] = arguments;
fetch(`/orders/${orderId}`, { headers: { authorization: "Bearer " + localStorage.getItem("orders-token") } })
  .then((response) => done(response.status), (error) => done(String(error)));
"#;

#[derive(Debug, Deserialize)]
pub(crate) struct Page {
    pub connection: String,
    pub orders: Vec<Row>,
    pub queue: Vec<String>,
    pub sales: Vec<Sale>,
    pub admin_view: bool,
    /// What the sign-out notice says, when it shows.
    pub signed_out: Option<String>,
    pub sockets_opened: u64,
    pub toasts: Vec<Toast>,
    pub recording: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Row {
    pub id: String,
    pub status: String,
    pub total: String,
    pub version: String,
    pub items: String,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Sale {
    pub product: String,
    pub units: String,
    pub revenue: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Toast {
    pub kind: String,
    pub text: String,
}

impl Page {
    pub(crate) fn status_of(&self, order_id: &str) -> Option<&str> {
        self.orders.iter().find(|row| row.id == order_id).map(|row| row.status.as_str())
    }

    /// Whether a success toast for a command that left its order at `version` was shown.
    pub(crate) fn toasted_success(&self, version: u32) -> bool {
        let suffix = format!("succeeded (version {version})");
        self.toasts.iter().any(|toast| toast.kind == "success" && toast.text.ends_with(&suffix))
    }

    /// The only order listed, if exactly one is.
    pub(crate) fn single_order(&self) -> Option<&Row> {
        match self.orders.as_slice() {
            [row] => Some(row),
            _ => None,
        }
    }
}

/// Polls the page until `check` gives a value. Fails at once if the page showed a failure
/// toast or was reloaded.
pub(crate) async fn wait_page<T>(browser: &Browser, what: &str, check: impl Fn(&Page) -> Option<T>) -> T {
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

pub(crate) async fn open_page(browser: &Browser, address: SocketAddr) {
    browser.goto(&format!("http://{address}/")).await;
    browser.script::<serde_json::Value>(RECORD_TOASTS, Vec::new()).await;
}

pub(crate) async fn wait_connected(browser: &Browser, user: &str) {
    let connected = format!("connected as {user} ");
    wait_page(browser, &format!("the page is connected as {user}"), |page| {
        page.connection.starts_with(&connected).then_some(())
    })
    .await;
}

/// Logs in with the dev login (the app runs without a token secret).
pub(crate) async fn log_in(browser: &Browser, user: &str) {
    browser.fill("#user", user).await;
    browser.click("#login").await;
    wait_connected(browser, user).await;
}

pub(crate) async fn place_order(browser: &Browser, product: &str, quantity: u32, unit_price_minor: u32) {
    browser.fill("#product", product).await;
    browser.fill("#quantity", &quantity.to_string()).await;
    browser.fill("#price", &unit_price_minor.to_string()).await;
    browser.click("#place").await;
}

/// Waits for the success toast of a first command and the one order it placed.
pub(crate) async fn wait_placed(browser: &Browser, who: &str) -> Row {
    wait_page(browser, &format!("{who}'s order is listed as placed and its success toasted"), |page| {
        let row = page.single_order()?;
        (row.status == "placed" && row.version == "1" && page.toasted_success(1)).then(|| row.clone())
    })
    .await
}

pub(crate) async fn serve() -> (App, SocketAddr) {
    serve_with(AppConfig::default()).await
}

/// The embedded app (no fixture) with `config`, on a loopback port.
pub(crate) async fn serve_with(config: AppConfig) -> (App, SocketAddr) {
    let (app, router) = start(config).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    (app, address)
}

/// What the page shows now (it must not have been reloaded since `open_page`).
pub(crate) async fn snapshot(browser: &Browser) -> Page {
    let page: Page = browser.script(SNAPSHOT, Vec::new()).await;
    assert!(page.recording, "the page was reloaded");
    page
}

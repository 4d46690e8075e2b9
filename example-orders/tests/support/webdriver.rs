#![allow(dead_code)]
//! Headless Chromium over WebDriver for the browser tests: Debian's `chromium` and
//! `chromedriver` (never a browser a tool downloads), one chromedriver child per test that
//! takes its browsers with it when dropped, one throw-away profile per browser session, and
//! polling with a deadline.

use std::future::Future;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use axum::body::Bytes;
use fantoccini::error::{CmdError, ErrorStatus, WebDriver};
use fantoccini::wd::WindowHandle;
use fantoccini::{Client, ClientBuilder, Locator};
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::time::Instant;

use crate::support::DEADLINE;

/// Debian's `chromium` package.
pub(crate) const CHROMIUM: &str = "/usr/bin/chromium";
/// Debian's `chromium-driver` package.
pub(crate) const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// How often a condition is checked again.
const POLL: Duration = Duration::from_millis(50);

/// A chromedriver child leading its own process group. The browsers it starts stay in that
/// group, so dropping this kills them too, even when a test panics half-way.
#[derive(Debug)]
pub(crate) struct Chromedriver {
    child: Child,
    url: String,
}

impl Chromedriver {
    /// Starts chromedriver on a free loopback port and waits until its `/status` says ready.
    pub(crate) async fn start() -> Self {
        require(CHROMIUM, "chromium");
        require(CHROMEDRIVER, "chromium-driver");
        // Another process may take the probed port before chromedriver binds it; chromedriver
        // then exits at once, and another port is tried.
        for _ in 0..3 {
            let port = free_port();
            let child = Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {CHROMEDRIVER}: {e}"));
            let mut driver = Self { child, url: format!("http://127.0.0.1:{port}") };
            if driver.ready().await {
                return driver;
            }
        }
        panic!("{CHROMEDRIVER} exited right after starting, three times")
    }

    /// Polls `/status` until chromedriver is ready (true) or has exited (false).
    async fn ready(&mut self) -> bool {
        let client: HttpClient<HttpConnector, Empty<Bytes>> = HttpClient::builder(TokioExecutor::new()).build_http();
        let uri: axum::http::Uri = format!("{}/status", self.url).parse().expect("status uri");
        let deadline = Instant::now() + DEADLINE;
        loop {
            if self.child.try_wait().expect("chromedriver's state").is_some() {
                return false;
            }
            if let Ok(response) = client.get(uri.clone()).await {
                let body = response.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                let status: Value = serde_json::from_slice(&body).unwrap_or_default();
                if status["value"]["ready"] == true {
                    return true;
                }
            }
            assert!(Instant::now() < deadline, "{uri} did not report ready within {DEADLINE:?}");
            tokio::time::sleep(POLL).await;
        }
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        // The group is chromedriver's own (`process_group(0)`); it is not reaped yet, so its
        // id cannot have been reused.
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// Fails, saying how to install it, when a browser package is missing.
fn require(path: &str, package: &str) {
    assert!(
        Path::new(path).is_file(),
        "{path} is missing: the browser tests need Debian's `{package}` package; \
         run `./scripts/test --with-browser` (it installs chromium and chromium-driver)"
    );
}

fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("a free port");
    listener.local_addr().expect("its address").port()
}

/// One headless browser session with a profile of its own (so its own `localStorage`).
#[derive(Debug)]
pub(crate) struct Browser {
    client: Client,
    profile: TempDir,
}

impl Browser {
    pub(crate) async fn open(driver: &Chromedriver) -> Self {
        let profile = tempfile::tempdir().expect("a profile directory");
        let user_data_dir = format!("--user-data-dir={}", profile.path().display());
        let args = [
            "--headless=new",
            "--no-sandbox", // running as root
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--window-size=1280,1024",
            &user_data_dir,
        ];
        let Value::Object(capabilities) = json!({ "goog:chromeOptions": { "binary": CHROMIUM, "args": args } }) else {
            unreachable!("an object literal")
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&driver.url)
            .await
            .unwrap_or_else(|e| panic!("chromedriver cannot start a session of {CHROMIUM}: {e}"));
        Self { client, profile }
    }

    /// Ends the session (chromedriver closes the browser), then removes the profile.
    pub(crate) async fn close(self) {
        self.client.close().await.expect("the session ends");
        drop(self.profile);
    }

    pub(crate) async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap_or_else(|e| panic!("opening {url}: {e}"));
    }

    /// Runs `script` as a function body in the current window; returns what it returns.
    pub(crate) async fn script<T: DeserializeOwned>(&self, script: &str, args: Vec<Value>) -> T {
        let value = self.client.execute(script, args).await.unwrap_or_else(|e| panic!("running a script: {e}"));
        serde_json::from_value(value).expect("the script's result")
    }

    /// Runs `script`, which calls its last argument with the result, and waits for it.
    pub(crate) async fn script_async<T: DeserializeOwned>(&self, script: &str, args: Vec<Value>) -> T {
        let value = self.client.execute_async(script, args).await.unwrap_or_else(|e| panic!("running a script: {e}"));
        serde_json::from_value(value).expect("the script's result")
    }

    /// Replaces the value of the input `css` selects by typing `text`.
    pub(crate) async fn fill(&self, css: &str, text: &str) {
        let input = self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("finding {css}: {e}"));
        input.clear().await.unwrap_or_else(|e| panic!("clearing {css}: {e}"));
        input.send_keys(text).await.unwrap_or_else(|e| panic!("typing into {css}: {e}"));
    }

    /// Clicks what `css` selects, trying again while it is missing, was re-rendered or is
    /// covered (by a toast, say).
    pub(crate) async fn click(&self, css: &str) {
        eventually(&format!("{css} can be clicked"), || async move {
            let clicked = match self.client.find(Locator::Css(css)).await {
                Ok(element) => element.click().await,
                Err(error) => Err(error),
            };
            match clicked {
                Ok(()) => Ok(()),
                Err(CmdError::Standard(WebDriver { error, message, .. })) if transient(&error) => Err(message.into()),
                Err(error) => panic!("clicking {css}: {error}"),
            }
        })
        .await;
    }

    /// Saves a PNG of the window in `$TIDEMARK_SCREENSHOT_DIR/<name>.png` when that variable
    /// is set (to look at what a test saw); does nothing otherwise.
    pub(crate) async fn screenshot(&self, name: &str) {
        let Some(dir) = std::env::var_os("TIDEMARK_SCREENSHOT_DIR") else { return };
        let png = self.client.screenshot().await.expect("a screenshot");
        std::fs::write(Path::new(&dir).join(format!("{name}.png")), png).expect("writing the screenshot");
    }

    /// The window that commands go to.
    pub(crate) async fn window(&self) -> WindowHandle {
        self.client.window().await.expect("the current window")
    }

    /// Opens a new window (not a background tab, which Chromium may throttle) and switches to it.
    pub(crate) async fn new_window(&self) -> WindowHandle {
        let window = self.client.new_window(false).await.expect("a new window").handle;
        self.switch_to(&window).await;
        window
    }

    pub(crate) async fn switch_to(&self, window: &WindowHandle) {
        self.client.switch_to_window(window.clone()).await.expect("switching windows");
    }
}

fn transient(error: &ErrorStatus) -> bool {
    matches!(
        error,
        ErrorStatus::NoSuchElement
            | ErrorStatus::StaleElementReference
            | ErrorStatus::ElementClickIntercepted
            | ErrorStatus::ElementNotInteractable
    )
}

/// Polls `check` until it gives a value; after [`DEADLINE`], fails with what it saw last.
pub(crate) async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + DEADLINE;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(seen) => {
                assert!(
                    Instant::now() < deadline,
                    "timed out after {DEADLINE:?} waiting until {what}; last seen: {seen}"
                );
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

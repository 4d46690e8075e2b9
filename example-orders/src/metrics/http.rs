//! HTTP metrics: an axum middleware counting requests by route, method and status, and
//! timing them.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;

/// HTTP requests answered, by route (the pattern, such as `/orders/{id}`), method and
/// status code.
pub const HTTP_REQUESTS_TOTAL: &str = "orders_http_requests_total";
/// Time to answer an HTTP request, by route and method.
pub const HTTP_REQUEST_SECONDS: &str = "orders_http_request_seconds";

pub(super) fn describe() {
    metrics::describe_counter!(HTTP_REQUESTS_TOTAL, "HTTP requests answered, by route pattern, method and status");
    metrics::describe_histogram!(
        HTTP_REQUEST_SECONDS,
        metrics::Unit::Seconds,
        "Time to answer an HTTP request (to the response head), by route pattern and method"
    );
}

/// The middleware (`axum::middleware::from_fn(record_http)`): requests matching no route
/// count under the route `unmatched`.
pub async fn record_http(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str).to_owned();
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let took = started.elapsed().as_secs_f64();
    metrics::histogram!(HTTP_REQUEST_SECONDS, "route" => route.clone(), "method" => method.clone()).record(took);
    metrics::counter!(HTTP_REQUESTS_TOTAL, "route" => route, "method" => method, "status" => status).increment(1);
    response
}

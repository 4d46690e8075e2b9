//! The environment variables the testkit reads.

/// Points every test at an existing PostgreSQL database (used as is).
pub(crate) const DATABASE_URL: &str = "DATABASE_URL";

/// Points every test at an existing nats-server with JetStream (used as is).
pub(crate) const NATS_URL: &str = "NATS_URL";

/// When set to anything but empty or `0`, the shared-server lookups skip `DATABASE_URL`,
/// `NATS_URL` and the standard local ports and always start throwaway servers. Used to test the
/// fallback path on machines where the shared services run.
pub(crate) const FORCE_THROWAWAY: &str = "TIDEMARK_TEST_FORCE_THROWAWAY";

/// Whether [`FORCE_THROWAWAY`] is switched on.
pub(crate) fn force_throwaway() -> bool {
    matches!(std::env::var(FORCE_THROWAWAY).as_deref(), Ok(v) if !v.is_empty() && v != "0")
}

/// The value of `name`, unless it is unset, empty or not UTF-8.
pub(crate) fn non_empty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

//! Finding server executables on `PATH` and in the places Debian's packages put them.

use std::path::{Path, PathBuf};

/// The directories of `PATH`, in order.
fn path_dirs() -> Vec<PathBuf> {
    std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default()
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    path.metadata().map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

/// `/usr/lib/postgresql/<version>/bin`, newest major version first.
fn debian_postgres_dirs() -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") else {
        return Vec::new();
    };
    let mut versions: Vec<(u32, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, e.path().join("bin")))
        })
        .collect();
    versions.sort_by_key(|(version, _)| std::cmp::Reverse(*version));
    versions.into_iter().map(|(_, dir)| dir).collect()
}

/// The first directory holding both `initdb` and `postgres` (so their versions match): `PATH`
/// first, then `/usr/lib/postgresql/*/bin`, newest first.
pub(crate) fn postgres_bin_dir() -> Result<PathBuf, String> {
    path_dirs()
        .into_iter()
        .chain(debian_postgres_dirs())
        .find(|dir| is_executable(&dir.join("initdb")) && is_executable(&dir.join("postgres")))
        .ok_or_else(|| {
            "no PostgreSQL server executables (initdb and postgres) on PATH or under \
             /usr/lib/postgresql/*/bin"
                .to_owned()
        })
}

/// `nats-server` on `PATH`, else `/usr/sbin/nats-server` (where Debian's package puts it).
pub(crate) fn nats_server() -> Result<PathBuf, String> {
    path_dirs()
        .into_iter()
        .map(|dir| dir.join("nats-server"))
        .chain([PathBuf::from("/usr/sbin/nats-server")])
        .find(|path| is_executable(path))
        .ok_or_else(|| "no nats-server executable on PATH or at /usr/sbin/nats-server".to_owned())
}

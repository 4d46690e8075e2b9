//! Running PostgreSQL as the `postgres` OS user when the tests run as root.

use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::Command;

use nix::unistd::{geteuid, User};

/// The uid and gid a server process is switched to before it starts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Identity {
    uid: u32,
    gid: u32,
}

impl Identity {
    /// `None` when not running as root (servers run as the current user); the `postgres` user
    /// when running as root, because `initdb` and `postgres` refuse to run as root.
    pub(crate) fn for_postgres() -> Result<Option<Self>, String> {
        if !geteuid().is_root() {
            return Ok(None);
        }
        match User::from_name("postgres") {
            Ok(Some(user)) => Ok(Some(Self { uid: user.uid.as_raw(), gid: user.gid.as_raw() })),
            Ok(None) => Err("the tests run as root, PostgreSQL refuses to run as root, and there is \
                             no `postgres` OS user to run it as (installing the postgresql package \
                             creates it)"
                .to_owned()),
            Err(e) => Err(format!("cannot look up the `postgres` OS user: {e}")),
        }
    }

    /// Makes `cmd` run under this identity.
    pub(crate) fn apply(&self, cmd: &mut Command) {
        cmd.uid(self.uid).gid(self.gid);
    }

    /// Gives `path` to this identity, so the server can write to it.
    pub(crate) fn chown(&self, path: &Path) -> std::io::Result<()> {
        std::os::unix::fs::chown(path, Some(self.uid), Some(self.gid))
    }
}

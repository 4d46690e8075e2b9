//! A throwaway certificate authority for TLS tests, made with the `openssl` command.
//!
//! Every call makes a new CA (a P-256 key, valid for two days), a server certificate it signs
//! for `127.0.0.1` and `localhost`, and a client certificate it signs for mutual TLS. Nothing
//! here is trusted by the system: a client must be given [`TlsFiles::ca`] to accept the server.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The PEM files of a throwaway CA, kept in the directory of the server that uses them.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

impl TlsFiles {
    /// The CA certificate: give it to clients so they trust the server.
    pub fn ca(&self) -> &Path {
        &self.ca
    }

    /// The server's certificate (subject alternative names `127.0.0.1` and `localhost`).
    pub fn server_cert(&self) -> &Path {
        &self.server_cert
    }

    /// The server's private key.
    pub fn server_key(&self) -> &Path {
        &self.server_key
    }

    /// A client certificate signed by the CA, for servers that verify clients.
    pub fn client_cert(&self) -> &Path {
        &self.client_cert
    }

    /// The client certificate's private key.
    pub fn client_key(&self) -> &Path {
        &self.client_key
    }

    /// Makes a new CA and its server and client certificates in `dir`.
    pub(crate) fn generate(dir: &Path) -> Result<Self, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let files = Self {
            ca: dir.join("ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server-key.pem"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client-key.pem"),
        };
        let ca_key = dir.join("ca-key.pem");
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=tidemark throwaway test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
                "-keyout",
            ],
            &[&ca_key, Path::new("-out"), &files.ca],
        )?;
        let server = Leaf { name: "server", cn: "localhost", usage: "serverAuth", san: "IP:127.0.0.1,DNS:localhost" };
        server.sign(dir, &files.ca, &ca_key, &files.server_cert, &files.server_key)?;
        let client =
            Leaf { name: "client", cn: "tidemark-test-client", usage: "clientAuth", san: "DNS:tidemark-client" };
        client.sign(dir, &files.ca, &ca_key, &files.client_cert, &files.client_key)?;
        Ok(files)
    }
}

/// A certificate the CA signs.
struct Leaf {
    name: &'static str,
    cn: &'static str,
    usage: &'static str,
    san: &'static str,
}

impl Leaf {
    fn sign(&self, dir: &Path, ca: &Path, ca_key: &Path, cert: &Path, key: &Path) -> Result<(), String> {
        let csr = dir.join(format!("{}.csr", self.name));
        let extensions = dir.join(format!("{}.ext", self.name));
        let text = format!(
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
             extendedKeyUsage={}\nsubjectAltName={}\n",
            self.usage, self.san
        );
        std::fs::write(&extensions, text).map_err(|e| format!("cannot write {}: {e}", extensions.display()))?;
        let subject = format!("/CN={}", self.cn);
        openssl(
            dir,
            &["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", &subject],
            &[Path::new("-keyout"), key, Path::new("-out"), &csr],
        )?;
        openssl(
            dir,
            &["x509", "-req", "-days", "2", "-set_serial", &serial(self.name)],
            &[
                Path::new("-in"),
                &csr,
                Path::new("-CA"),
                ca,
                Path::new("-CAkey"),
                ca_key,
                Path::new("-extfile"),
                &extensions,
                Path::new("-out"),
                cert,
            ],
        )
    }
}

/// A serial number unique enough for a throwaway CA.
fn serial(name: &str) -> String {
    let n = u64::from_str_radix(&crate::names::random_hex12(), 16).unwrap_or(1);
    format!("{}", n * 2 + u64::from(name == "client"))
}

/// Runs `openssl` with `args` followed by `paths`, in `dir`.
fn openssl(dir: &Path, args: &[&str], paths: &[&Path]) -> Result<(), String> {
    let output = Command::new("openssl")
        .args(args)
        .args(paths)
        .current_dir(dir)
        .output()
        .map_err(|e| format!("cannot run openssl (install it with `apt-get install -y openssl`): {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!("openssl {} failed: {}", args.join(" "), String::from_utf8_lossy(&output.stderr)))
    }
}

//! A private PostgreSQL cluster for one test.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::error::{Error, Result, io};
use crate::net::{free_port, poll, random_token, tail};
use crate::tools::{PgBin, ensure_postgres, run};

/// A PostgreSQL server on 127.0.0.1 with its own data directory, killed
/// on drop. The superuser is `postgres` with a random password; password
/// (scram) authentication over TCP.
#[derive(Debug)]
pub struct Postgres {
    bin: PgBin,
    dir: tempfile::TempDir,
    port: u16,
    password: String,
    child: Option<Child>,
    log: PathBuf,
    /// Run the server as this user (root cannot run PostgreSQL).
    user: Option<(u32, u32)>,
}

impl Postgres {
    /// `initdb` and start a server on a free port.
    pub async fn start() -> Result<Postgres> {
        let bin = ensure_postgres()?;
        let dir = tempfile::Builder::new()
            .prefix("keyward-postgres-")
            .tempdir()
            .map_err(io("creating a temporary directory"))?;
        let user = if rustix::process::geteuid().is_root() {
            Some(postgres_user()?)
        } else {
            None
        };
        // The server user must reach the directory.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .map_err(io("opening up the temporary directory"))?;
        let data = dir.path().join("data");
        let sock = dir.path().join("sock");
        for d in [&data, &sock] {
            std::fs::create_dir(d).map_err(io(format!("creating {}", d.display())))?;
            if let Some((uid, gid)) = user {
                std::os::unix::fs::chown(d, Some(uid), Some(gid))
                    .map_err(io(format!("handing {} to the postgres user", d.display())))?;
            }
        }
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700))
            .map_err(io("restricting the data directory"))?;
        let password = random_token(24);
        let pwfile = dir.path().join("pwfile");
        std::fs::write(&pwfile, format!("{password}\n"))
            .map_err(io("writing the password file"))?;
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid)).map_err(io("chown pwfile"))?;
        }
        let mut pg = Postgres {
            log: dir.path().join("postgres.log"),
            bin,
            dir,
            port: 0,
            password,
            child: None,
            user,
        };
        let mut initdb = pg.command("initdb");
        initdb
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "-A",
                "scram-sha-256",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ])
            .arg(format!("--pwfile={}", pwfile.display()));
        run(&mut initdb)?;
        let _ = std::fs::remove_file(&pwfile);
        let mut last = None;
        for _ in 0..5 {
            pg.port = free_port()?;
            match pg.launch().await {
                Ok(()) => return Ok(pg),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::Io {
            context: "starting PostgreSQL".into(),
            source: std::io::Error::other("no attempt made"),
        }))
    }

    fn command(&self, tool: &str) -> Command {
        let mut cmd = Command::new(self.bin.tool(tool));
        cmd.current_dir(self.dir.path()).env("LC_ALL", "C");
        if let Some((uid, gid)) = self.user {
            cmd.uid(uid).gid(gid);
        }
        cmd
    }

    async fn launch(&mut self) -> Result<()> {
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(io("opening the PostgreSQL log"))?;
        let log2 = log.try_clone().map_err(io("opening the PostgreSQL log"))?;
        let data = self.dir.path().join("data");
        let sock = self.dir.path().join("sock");
        let mut cmd = self.command("postgres");
        cmd.arg("-D")
            .arg(&data)
            .arg("-c")
            .arg("listen_addresses=127.0.0.1")
            .arg("-c")
            .arg(format!("port={}", self.port))
            .arg("-c")
            .arg(format!("unix_socket_directories={}", sock.display()))
            .args([
                "-c",
                "fsync=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=50",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2));
        let child = cmd.spawn().map_err(io("starting postgres"))?;
        self.child = Some(child);
        let isready = self.bin.tool("pg_isready");
        let port = self.port.to_string();
        let ready = poll(Duration::from_secs(60), || {
            let exited = match self.child.as_mut() {
                Some(c) => !matches!(c.try_wait(), Ok(None)),
                None => true,
            };
            let ok = !exited
                && Command::new(&isready)
                    .args([
                        "-q",
                        "-h",
                        "127.0.0.1",
                        "-p",
                        &port,
                        "-U",
                        "postgres",
                        "-d",
                        "postgres",
                    ])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
            async move {
                if exited {
                    Some(false)
                } else {
                    ok.then_some(true)
                }
            }
        })
        .await;
        match ready {
            Some(true) => Ok(()),
            other => {
                self.kill();
                Err(Error::Start {
                    what: "PostgreSQL",
                    detail: match other {
                        Some(_) => "the process exited".into(),
                        None => format!(
                            "pg_isready did not succeed on port {} within 60s",
                            self.port
                        ),
                    },
                    log: self.log.display().to_string(),
                    tail: tail(&self.log, 30),
                })
            }
        }
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The superuser (`postgres`).
    pub fn superuser(&self) -> &str {
        "postgres"
    }

    /// The superuser's password.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// `postgresql://postgres:<password>@127.0.0.1:<port>/postgres`.
    pub fn connection_url(&self) -> String {
        format!(
            "postgresql://postgres:{}@127.0.0.1:{}/postgres",
            self.password, self.port
        )
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kill the server and wait for it. Idempotent.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGQUIT: immediate shutdown, backends exit with the postmaster.
            if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::QUIT);
            }
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while std::time::Instant::now() < deadline {
                if !matches!(child.try_wait(), Ok(None)) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.kill();
    }
}

/// uid and gid of the `postgres` user (created by Debian's package).
fn postgres_user() -> Result<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").map_err(io("reading /etc/passwd"))?;
    passwd
        .lines()
        .find_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            (f.len() > 3 && f[0] == "postgres")
                .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
                .flatten()
        })
        .ok_or_else(|| Error::Missing {
            what: "PostgreSQL",
            detail: "running as root, and there is no `postgres` user to run the server as".into(),
            install: "apt-get install -y postgresql (creates the user), or run the tests as a non-root user".into(),
        })
}

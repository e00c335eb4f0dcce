//! Reactions to changed secrets: run a command, signal a process, or (exec
//! mode) restart or signal the supervised child.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A signal name from configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum SignalName {
    /// SIGHUP.
    Hup,
    /// SIGTERM.
    Term,
    /// SIGINT.
    Int,
    /// SIGUSR1.
    Usr1,
    /// SIGUSR2.
    Usr2,
    /// SIGQUIT.
    Quit,
}

impl SignalName {
    fn signal(self) -> Signal {
        match self {
            SignalName::Hup => Signal::HUP,
            SignalName::Term => Signal::TERM,
            SignalName::Int => Signal::INT,
            SignalName::Usr1 => Signal::USR1,
            SignalName::Usr2 => Signal::USR2,
            SignalName::Quit => Signal::QUIT,
        }
    }
}

/// What to do when rendered output changes (after the first render).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct OnChange {
    /// Run this command (argv, no shell) and wait for it, with a timeout.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// Send a signal to the process whose pid is in this file.
    #[serde(default)]
    pub signal: Option<SignalTarget>,
    /// Timeout for `command`.
    #[serde(default = "default_command_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

fn default_command_timeout() -> Duration {
    Duration::from_secs(30)
}

/// A signal to send to a process named by a pid file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SignalTarget {
    /// File holding the pid.
    pub pid_file: PathBuf,
    /// Signal to send.
    #[serde(default = "default_signal")]
    pub signal: SignalName,
}

fn default_signal() -> SignalName {
    SignalName::Hup
}

impl OnChange {
    /// Run the configured reactions.
    pub async fn run(&self) -> Result<()> {
        if let Some(argv) = &self.command {
            run_command(argv, self.timeout).await?;
        }
        if let Some(target) = &self.signal {
            let text = tokio::fs::read_to_string(&target.pid_file)
                .await
                .map_err(|source| Error::Command {
                    command: format!("signal via {}", target.pid_file.display()),
                    source,
                })?;
            let pid: i32 = text.trim().parse().map_err(|_| Error::Command {
                command: format!("signal via {}", target.pid_file.display()),
                source: std::io::Error::other("the pid file does not hold a process id"),
            })?;
            send_signal(pid, target.signal)?;
        }
        Ok(())
    }
}

/// Send a signal to a process.
pub(crate) fn send_signal(pid: i32, signal: SignalName) -> Result<()> {
    let p = Pid::from_raw(pid).ok_or_else(|| Error::Command {
        command: format!("kill {pid}"),
        source: std::io::Error::other("invalid pid"),
    })?;
    kill_process(p, signal.signal()).map_err(|e| Error::Command {
        command: format!("kill -{signal:?} {pid}"),
        source: e.into(),
    })
}

async fn run_command(argv: &[String], timeout: Duration) -> Result<()> {
    let Some((program, args)) = argv.split_first() else {
        return Err(Error::Command {
            command: String::new(),
            source: std::io::Error::other("empty command"),
        });
    };
    let err = |source| Error::Command {
        command: program.clone(),
        source,
    };
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(err)?;
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => Err(err(std::io::Error::other(format!("exited with {status}")))),
        Ok(Err(e)) => Err(err(e)),
        Err(_) => {
            let _ = child.kill().await;
            Err(err(std::io::Error::other(format!(
                "timed out after {timeout:?}"
            ))))
        }
    }
}

/// How exec mode reacts to changed env vars.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExecRestart {
    /// Stop the child (SIGTERM, then SIGKILL after the grace period) and start
    /// it again with the new environment.
    #[default]
    Restart,
    /// Send a signal and keep it running (the child re-reads files itself).
    Signal(SignalName),
    /// Do nothing.
    Never,
}

/// The child process of `keyward agent exec -- <cmd>`.
#[derive(Debug)]
pub(crate) struct Supervised {
    argv: Vec<String>,
    child: Option<tokio::process::Child>,
    grace: Duration,
}

impl Supervised {
    /// A supervisor for `argv`.
    pub(crate) fn new(argv: Vec<String>, grace: Duration) -> Self {
        Supervised {
            argv,
            child: None,
            grace,
        }
    }

    /// Start the child with `env` added to the agent's environment.
    pub(crate) fn start(&mut self, env: &[(String, String)]) -> Result<()> {
        let Some((program, args)) = self.argv.split_first() else {
            return Err(Error::Command {
                command: String::new(),
                source: std::io::Error::other("exec needs a command after `--`"),
            });
        };
        let child = tokio::process::Command::new(program)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| Error::Command {
                command: program.clone(),
                source,
            })?;
        self.child = Some(child);
        Ok(())
    }

    /// The child's pid.
    pub(crate) fn pid(&self) -> Option<i32> {
        self.child.as_ref().and_then(|c| c.id()).map(|p| p as i32)
    }

    /// Stop the child: SIGTERM, then SIGKILL after the grace period.
    pub(crate) async fn stop(&mut self) -> Result<Option<std::process::ExitStatus>> {
        let Some(mut child) = self.child.take() else {
            return Ok(None);
        };
        if let Some(pid) = child.id() {
            let _ = send_signal(pid as i32, SignalName::Term);
        }
        match tokio::time::timeout(self.grace, child.wait()).await {
            Ok(status) => Ok(status.ok()),
            Err(_) => {
                let _ = child.kill().await;
                Ok(child.wait().await.ok())
            }
        }
    }

    /// React to a change.
    pub(crate) async fn on_change(
        &mut self,
        how: ExecRestart,
        env: &[(String, String)],
    ) -> Result<()> {
        match how {
            ExecRestart::Never => Ok(()),
            ExecRestart::Signal(sig) => match self.pid() {
                Some(pid) => send_signal(pid, sig),
                None => self.start(env),
            },
            ExecRestart::Restart => {
                self.stop().await?;
                self.start(env)
            }
        }
    }

    /// Wait until the child exits.
    pub(crate) async fn wait(&mut self) -> Option<std::process::ExitStatus> {
        match self.child.as_mut() {
            Some(c) => c.wait().await.ok(),
            None => std::future::pending().await,
        }
    }
}

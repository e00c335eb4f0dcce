//! `cargo xtask bench agent`: Keyward's agent and `bao agent` side by side
//! against one OpenBao dev server, the same three secrets (KV v2, database
//! credentials from a real PostgreSQL, a PKI certificate), equivalent
//! templates and token auth. Measures the one-shot time to first render
//! (median of N runs each), steady-state RSS after 30 s of long-running
//! mode and CPU seconds over a renewal window; writes
//! target/bench/agent.json and prints a table.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;

use crate::util::{cargo, exec, header, median, note, root, round2};

const STEPS: usize = 5;
/// Target: Keyward's first render takes at most half of bao agent's.
const FIRST_RENDER_TARGET: f64 = 0.5;
/// Target: Keyward's steady-state RSS is at most 30 % of bao agent's.
const RSS_TARGET: f64 = 0.3;
/// Files each agent renders.
const FILES: [&str; 3] = ["kv.txt", "db.env", "tls.pem"];
/// How long long-running mode runs before the RSS sample.
const RSS_AFTER: Duration = Duration::from_secs(30);
/// Limit for one one-shot run.
const ONCE_TIMEOUT: Duration = Duration::from_secs(60);

/// Options of `cargo xtask bench agent`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Options {
    /// CPU measuring window in long-running mode, in seconds.
    #[arg(long, default_value_t = 300)]
    pub(crate) cpu_window: u64,
    /// One-shot runs per agent (the median is reported).
    #[arg(long, default_value_t = 10)]
    pub(crate) runs: usize,
    /// Use this keyward binary instead of building target/release/keyward.
    #[arg(long, value_name = "PATH")]
    pub(crate) keyward_bin: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Agent {
    Keyward,
    Bao,
}

impl Agent {
    fn name(self) -> &'static str {
        match self {
            Agent::Keyward => "keyward",
            Agent::Bao => "bao",
        }
    }
}

struct Bins {
    keyward: PathBuf,
    bao: PathBuf,
}

struct Env {
    work: PathBuf,
    addr: String,
    plugins: PathBuf,
    bins: Bins,
}

pub(crate) fn run(opts: Options) -> Result<()> {
    if opts.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let root = root();
    header(1, STEPS, "build keyward (release); check the plugins");
    // The Keyward agent loads policy-rules and render-template from
    // target/plugins; build them only when they are missing.
    let plugins = root.join("target/plugins");
    if ["policy-rules", "render-template"]
        .iter()
        .any(|p| !plugins.join(format!("{p}.wasm")).is_file())
    {
        crate::plugins::build_all()?;
    } else {
        note("plugins: using target/plugins (run `cargo xtask plugins` to rebuild)");
    }
    let keyward = match &opts.keyward_bin {
        Some(bin) => bin.clone(),
        None => {
            exec(cargo().args(["build", "--release", "--quiet", "-p", "keyward-cli"]))?;
            root.join("target/release/keyward")
        }
    };
    let bao_bin = keyward_testkit::ensure_bao().context("installing OpenBao")?;
    note(&format!("keyward: {}", keyward.display()));
    note(&format!("bao: {}", bao_bin.display()));

    header(
        2,
        STEPS,
        "start OpenBao (dev) and PostgreSQL; seed KV, database, PKI",
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let bao = rt.block_on(keyward_testkit::OpenBao::start_dev())?;
    let pg = rt.block_on(keyward_testkit::Postgres::start())?;
    note(&format!("OpenBao dev server at {}", bao.addr()));
    note(&format!("PostgreSQL on 127.0.0.1:{}", pg.port()));
    let work = root.join("target/bench/agent");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let (kw_token, bao_token) = rt.block_on(seed(&bao, &pg))?;
    std::fs::write(work.join("keyward-token"), kw_token)?;
    std::fs::write(work.join("bao-token"), bao_token)?;
    let env = Env {
        work: work.clone(),
        addr: bao.addr(),
        plugins,
        bins: Bins {
            keyward,
            bao: bao_bin,
        },
    };
    for agent in [Agent::Keyward, Agent::Bao] {
        write_config(&env, agent, true)?;
        write_config(&env, agent, false)?;
    }
    note(&format!("configs under {}", rel(&root, &work)));

    header(
        3,
        STEPS,
        &format!(
            "one-shot first render, {} runs each (alternating)",
            opts.runs
        ),
    );
    let mut times: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    // One warm-up run each (page cache, first DB connection in OpenBao).
    for agent in [Agent::Keyward, Agent::Bao] {
        once(&env, agent).with_context(|| format!("{} warm-up run", agent.name()))?;
    }
    for i in 0..opts.runs {
        for (slot, agent) in [Agent::Keyward, Agent::Bao].into_iter().enumerate() {
            let ms = once(&env, agent)
                .with_context(|| format!("{} one-shot run {}", agent.name(), i + 1))?;
            times[slot].push(ms);
        }
        note(&format!(
            "run {:>2}: keyward {:>7.1} ms   bao agent {:>7.1} ms",
            i + 1,
            times[0][i],
            times[1][i]
        ));
    }
    let kw_first = median(&times[0]);
    let bao_first = median(&times[1]);

    header(
        4,
        STEPS,
        &format!(
            "long-running mode, both at once: RSS after {} s, CPU over {} s",
            RSS_AFTER.as_secs(),
            opts.cpu_window
        ),
    );
    let mut kw = Running::start(&env, Agent::Keyward)?;
    let mut ba = Running::start(&env, Agent::Bao)?;
    let long = (|| -> Result<_> {
        let deadline = Instant::now() + ONCE_TIMEOUT;
        while !(kw.rendered() && ba.rendered()) {
            kw.check()?;
            ba.check()?;
            if Instant::now() > deadline {
                bail!("the long-running agents did not render every file in time");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let started = kw.started.min(ba.started);
        std::thread::sleep(RSS_AFTER.saturating_sub(started.elapsed()));
        kw.check()?;
        ba.check()?;
        let rss = [vm_rss_kib(kw.pid())?, vm_rss_kib(ba.pid())?];
        note(&format!(
            "VmRSS: keyward {} KiB, bao agent {} KiB",
            rss[0], rss[1]
        ));
        let cpu0 = [cpu_seconds(kw.pid())?, cpu_seconds(ba.pid())?];
        let kw_db0 = read_out(&env, Agent::Keyward, "db.env");
        let bao_db0 = read_out(&env, Agent::Bao, "db.env");
        let window = Duration::from_secs(opts.cpu_window);
        let t0 = Instant::now();
        while t0.elapsed() < window {
            std::thread::sleep(Duration::from_secs(1).min(window.saturating_sub(t0.elapsed())));
            kw.check()?;
            ba.check()?;
        }
        let cpu1 = [cpu_seconds(kw.pid())?, cpu_seconds(ba.pid())?];
        let cpu = [cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]];
        let rotated = [
            read_out(&env, Agent::Keyward, "db.env") != kw_db0,
            read_out(&env, Agent::Bao, "db.env") != bao_db0,
        ];
        note(&format!(
            "CPU over {} s: keyward {:.2} s, bao agent {:.2} s; db credentials re-rendered: keyward {}, bao agent {}",
            opts.cpu_window, cpu[0], cpu[1], rotated[0], rotated[1]
        ));
        let leases = rt.block_on(bao.leases("db/creds/app")).unwrap_or_default();
        note(&format!("db leases live in OpenBao: {}", leases.len()));
        Ok((rss, cpu, rotated))
    })();
    kw.stop();
    ba.stop();
    let (rss, cpu, rotated) = long?;

    header(5, STEPS, "target/bench/agent.json");
    drop(pg);
    drop(bao);
    let first_render_ratio = ratio(kw_first, bao_first);
    let rss_ratio = ratio(rss[0] as f64, rss[1] as f64);
    let cpu_ratio = ratio(cpu[0], cpu[1]);
    let first_ok = first_render_ratio <= FIRST_RENDER_TARGET;
    let rss_ok = rss_ratio <= RSS_TARGET;
    let doc = json!({
        "keyward": {
            "first_render_ms": times[0].iter().map(|v| round2(*v)).collect::<Vec<_>>(),
            "first_render_median_ms": round2(kw_first),
            "rss_kib": rss[0],
            "cpu_seconds": round2(cpu[0]),
            "db_rerendered_in_window": rotated[0],
        },
        "bao_agent": {
            "first_render_ms": times[1].iter().map(|v| round2(*v)).collect::<Vec<_>>(),
            "first_render_median_ms": round2(bao_first),
            "rss_kib": rss[1],
            "cpu_seconds": round2(cpu[1]),
            "db_rerendered_in_window": rotated[1],
        },
        "runs": opts.runs,
        "rss_after_seconds": RSS_AFTER.as_secs(),
        "cpu_window_seconds": opts.cpu_window,
        "first_render_ratio": round3(first_render_ratio),
        "rss_ratio": round3(rss_ratio),
        "cpu_ratio": round3(cpu_ratio),
        "targets": {
            "first_render_ratio": FIRST_RENDER_TARGET,
            "rss_ratio": RSS_TARGET,
        },
        "pass": {
            "first_render_ratio": first_ok,
            "rss_ratio": rss_ok,
        },
        "all_pass": first_ok && rss_ok,
    });
    let out = root.join("target/bench/agent.json");
    std::fs::write(&out, serde_json::to_string_pretty(&doc)? + "\n")
        .with_context(|| format!("cannot write {}", out.display()))?;

    println!(
        "{:<26} {:>12} {:>12} {:>8} {:>8}  result",
        "figure", "keyward", "bao agent", "ratio", "target"
    );
    let verdict = |ok: bool| if ok { "pass" } else { "FAIL" };
    println!(
        "{:<26} {:>9.1} ms {:>9.1} ms {:>8.3} {:>8}  {}",
        "first render (median)",
        kw_first,
        bao_first,
        first_render_ratio,
        format!("<= {FIRST_RENDER_TARGET}"),
        verdict(first_ok)
    );
    println!(
        "{:<26} {:>8.1} MiB {:>8.1} MiB {:>8.3} {:>8}  {}",
        format!("RSS after {} s", RSS_AFTER.as_secs()),
        rss[0] as f64 / 1024.0,
        rss[1] as f64 / 1024.0,
        rss_ratio,
        format!("<= {RSS_TARGET}"),
        verdict(rss_ok)
    );
    println!(
        "{:<26} {:>10.2} s {:>10.2} s {:>8.3} {:>8}  -",
        format!("CPU over {} s", opts.cpu_window),
        cpu[0],
        cpu[1],
        cpu_ratio,
        "-"
    );
    println!("wrote {}", rel(&root, &out));
    if !(first_ok && rss_ok) {
        bail!(
            "some agent figures miss their targets (see {})",
            out.display()
        );
    }
    Ok(())
}

/// Seed KV v2, a database role on the PostgreSQL (20 s TTL so leases renew
/// inside the CPU window) and a PKI role; one token per agent.
async fn seed(
    bao: &keyward_testkit::OpenBao,
    pg: &keyward_testkit::Postgres,
) -> Result<(String, String)> {
    bao.write(
        "secret/data/bench/app",
        json!({"data": {"username": "bench", "password": "correct-horse-battery", "api_key": "k-1234"}}),
    )
    .await?;
    bao.enable_secrets("database", "db").await?;
    bao.write(
        "db/config/pg",
        json!({
            "plugin_name": "postgresql-database-plugin",
            "connection_url": format!("postgresql://{{{{username}}}}:{{{{password}}}}@127.0.0.1:{}/postgres?sslmode=disable", pg.port()),
            "username": pg.superuser(), "password": pg.password(), "allowed_roles": ["app"],
        }),
    )
    .await?;
    bao.write(
        "db/roles/app",
        json!({"db_name": "pg", "creation_statements": ["CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"], "default_ttl": "20s", "max_ttl": "2m"}),
    )
    .await?;
    bao.enable_pki("pki", "Keyward Bench CA", "bench.example.com")
        .await?;
    bao.put_policy(
        "bench-agent",
        r#"
path "secret/data/bench/*" { capabilities = ["read"] }
path "db/creds/app" { capabilities = ["read"] }
path "pki/issue/web" { capabilities = ["update"] }
path "sys/leases/renew" { capabilities = ["update"] }
path "sys/leases/revoke" { capabilities = ["update"] }
"#,
    )
    .await?;
    let kw = bao.create_token(&["bench-agent"], "24h", None).await?;
    let ba = bao.create_token(&["bench-agent"], "24h", None).await?;
    Ok((kw, ba))
}

fn out_dir(env: &Env, agent: Agent, once: bool) -> PathBuf {
    env.work.join(format!(
        "out-{}-{}",
        agent.name(),
        if once { "once" } else { "long" }
    ))
}

fn config_path(env: &Env, agent: Agent, once: bool) -> PathBuf {
    let mode = if once { "once" } else { "long" };
    match agent {
        Agent::Keyward => env.work.join(format!("keyward-{mode}.yaml")),
        Agent::Bao => env.work.join(format!("bao-{mode}.hcl")),
    }
}

const CN: &str = "common_name=app.bench.example.com";

fn write_config(env: &Env, agent: Agent, once: bool) -> Result<()> {
    let out = out_dir(env, agent, once);
    let work = env.work.display();
    let text = match agent {
        Agent::Keyward => format!(
            r#"# Keyward agent configuration written by `cargo xtask bench agent`.
vault:
  address: {addr}
  auth:
    method: token
    token-file: {work}/keyward-token
workload:
  name: bench-app
  namespace: bench
  service-account: app
mounts:
  secret: kv2
  db: database
  pki: pki
plugins:
  dir: {plugins}
  policies:
    - name: rules
      component: policy-rules
      settings:
        rules:
          - name: bench-app
            match: {{namespaces: [bench], service-accounts: [app]}}
            allow:
              paths: ["secret/bench/**", "db/creds/app", "pki/issue/web"]
              delivery: [file]
              max-ttl: 24h
outputs:
  directory: {out}
listen: null
secrets:
  - name: kv
    file: {{path: kv.txt, mode: 0o600}}
    template: |
      {{{{- with secret "secret/data/bench/app" }}}}
      user={{{{ .Data.data.username }}}}
      password={{{{ .Data.data.password }}}}
      api_key={{{{ .Data.data.api_key }}}}
      {{{{- end }}}}
  - name: db
    file: {{path: db.env, mode: 0o600}}
    template: |
      {{{{- with secret "db/creds/app" }}}}
      DB_USER={{{{ .Data.username }}}}
      DB_PASSWORD={{{{ .Data.password }}}}
      {{{{- end }}}}
  - name: tls
    file: {{path: tls.pem, mode: 0o600}}
    template: '{{{{ with pkiCert "pki/issue/web" "{CN}" "ttl=24h" }}}}{{{{ .Data.Cert }}}}{{{{ .Data.Key }}}}{{{{ end }}}}'
"#,
            addr = env.addr,
            plugins = env.plugins.display(),
            out = out.display(),
        ),
        Agent::Bao => {
            let exit = if once { "exit_after_auth = true\n" } else { "" };
            let tpl = |name: &str, body: &str| {
                format!(
                    "template {{\n  destination = \"{}/{name}\"\n  perms = \"0600\"\n  contents = <<EOT\n{body}\nEOT\n}}\n",
                    out.display()
                )
            };
            format!(
                "# bao agent configuration written by `cargo xtask bench agent`.\n{exit}pid_file = \"{work}/bao-{mode}.pid\"\nvault {{\n  address = \"{addr}\"\n}}\nauto_auth {{\n  method \"token_file\" {{\n    config = {{\n      token_file_path = \"{work}/bao-token\"\n    }}\n  }}\n}}\ntemplate_config {{\n  exit_on_retry_failure = true\n}}\n{kv}{db}{tls}",
                mode = if once { "once" } else { "long" },
                addr = env.addr,
                kv = tpl(
                    "kv.txt",
                    "{{- with secret \"secret/data/bench/app\" }}\nuser={{ .Data.data.username }}\npassword={{ .Data.data.password }}\napi_key={{ .Data.data.api_key }}\n{{- end }}"
                ),
                db = tpl(
                    "db.env",
                    "{{- with secret \"db/creds/app\" }}\nDB_USER={{ .Data.username }}\nDB_PASSWORD={{ .Data.password }}\n{{- end }}"
                ),
                tls = tpl(
                    "tls.pem",
                    &format!(
                        "{{{{ with pkiCert \"pki/issue/web\" \"{CN}\" \"ttl=24h\" }}}}{{{{ .Cert }}}}{{{{ .Key }}}}{{{{ end }}}}"
                    )
                ),
            )
        }
    };
    std::fs::write(config_path(env, agent, once), text)?;
    Ok(())
}

fn command(env: &Env, agent: Agent, once: bool, log: &Path) -> Result<Command> {
    let config = config_path(env, agent, once);
    let mut cmd = match agent {
        Agent::Keyward => {
            let mut c = Command::new(&env.bins.keyward);
            c.arg("agent");
            if once {
                c.arg("--once");
            }
            c.arg("--config").arg(&config);
            c
        }
        Agent::Bao => {
            let mut c = Command::new(&env.bins.bao);
            c.arg("agent").arg(format!("-config={}", config.display()));
            c
        }
    };
    let log = std::fs::File::create(log)?;
    cmd.current_dir(&env.work)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .env_remove("BAO_TOKEN")
        .env_remove("VAULT_TOKEN");
    Ok(cmd)
}

fn all_rendered(dir: &Path) -> bool {
    FILES.iter().all(|f| {
        std::fs::metadata(dir.join(f))
            .map(|m| m.len() > 0)
            .unwrap_or(false)
    })
}

/// One one-shot run: milliseconds from spawn until every file exists; the
/// process must then exit successfully.
fn once(env: &Env, agent: Agent) -> Result<f64> {
    let out = out_dir(env, agent, true);
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out)?;
    let log = env.work.join(format!("{}-once.log", agent.name()));
    let mut cmd = command(env, agent, true, &log)?;
    let started = Instant::now();
    let mut child = cmd.spawn().context("cannot start the agent")?;
    let mut rendered: Option<Duration> = None;
    let status = loop {
        if rendered.is_none() && all_rendered(&out) {
            rendered = Some(started.elapsed());
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > ONCE_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            bail!("timed out; log: {}", log.display());
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    if !status.success() {
        bail!(
            "exited with {status}; log {}:\n{}",
            log.display(),
            tail(&log)
        );
    }
    if rendered.is_none() && all_rendered(&out) {
        // Rendered between the last poll and the exit.
        rendered = Some(started.elapsed());
    }
    let Some(rendered) = rendered else {
        bail!(
            "exited without rendering {FILES:?}; log {}:\n{}",
            log.display(),
            tail(&log)
        );
    };
    Ok(rendered.as_secs_f64() * 1e3)
}

/// A long-running agent, killed on `stop` (and on drop).
struct Running {
    agent: Agent,
    child: Option<Child>,
    started: Instant,
    out: PathBuf,
    log: PathBuf,
}

impl Running {
    fn start(env: &Env, agent: Agent) -> Result<Running> {
        let out = out_dir(env, agent, false);
        let _ = std::fs::remove_dir_all(&out);
        std::fs::create_dir_all(&out)?;
        let log = env.work.join(format!("{}-long.log", agent.name()));
        let mut cmd = command(env, agent, false, &log)?;
        let started = Instant::now();
        let child = cmd.spawn().context("cannot start the agent")?;
        Ok(Running {
            agent,
            child: Some(child),
            started,
            out,
            log,
        })
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    fn rendered(&self) -> bool {
        all_rendered(&self.out)
    }

    /// Fail if the agent has exited.
    fn check(&mut self) -> Result<()> {
        if let Some(child) = self.child.as_mut()
            && let Some(status) = child.try_wait()?
        {
            self.child = None;
            bail!(
                "{} agent exited early ({status}); log {}:\n{}",
                self.agent.name(),
                self.log.display(),
                tail(&self.log)
            );
        }
        Ok(())
    }

    /// SIGTERM, then SIGKILL after 5 s.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

fn read_out(env: &Env, agent: Agent, file: &str) -> String {
    std::fs::read_to_string(out_dir(env, agent, false).join(file)).unwrap_or_default()
}

/// `VmRSS` from /proc/<pid>/status, in KiB.
fn vm_rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status"))?;
    parse_vm_rss(&status).with_context(|| format!("no VmRSS in /proc/{pid}/status"))
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// utime + stime of a process from /proc/<pid>/stat, in seconds.
fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("cannot read /proc/{pid}/stat"))?;
    let ticks = parse_cpu_ticks(&stat).with_context(|| format!("bad /proc/{pid}/stat"))?;
    Ok(ticks as f64 / clock_ticks())
}

/// utime (field 14) + stime (field 15); fields count from 1 and the
/// command name (field 2) may hold spaces, so count after its `)`.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

fn ratio(keyward: f64, bao: f64) -> f64 {
    if bao > 0.0 { keyward / bao } else { f64::NAN }
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_figures() {
        let status = "Name:\tbao\nVmPeak:\t  100 kB\nVmRSS:\t   45678 kB\nThreads:\t9\n";
        assert_eq!(parse_vm_rss(status), Some(45678));
        let stat = "1234 (my agent) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0";
        assert_eq!(parse_cpu_ticks(stat), Some(325));
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}

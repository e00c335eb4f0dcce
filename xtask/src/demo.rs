//! `cargo xtask demo`: an offline tour. Builds the plugins, renders a KV v2 +
//! PKI template through the whole pipeline with fixture secrets, and asks
//! the rules policy about two workloads: one allowed, one denied with its
//! reason. (The Vault-backed demo replaces this once the Vault crate lands.)

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::plugins;
use crate::util::{cargo, exec, header, note, root, show};

const STEPS: usize = 4;
/// `keyward policy check` exits with this when a secret is not allowed.
const EXIT_DENIED: i32 = 3;

pub(crate) fn run() -> Result<()> {
    let root = root();
    let demo = root.join("examples").join("demo");
    let rel = |p: &Path| p.strip_prefix(&root).unwrap_or(p).display().to_string();

    header(1, STEPS, "build the plugins");
    let built = plugins::build_all()?;
    let component = |name: &str| -> Result<PathBuf> {
        built
            .iter()
            .find(|b| b.name == name)
            .map(|b| b.path.clone())
            .with_context(|| format!("the plugin build produced no {name}.wasm"))
    };
    let renderer = component("render-template")?;
    let policy = component("policy-rules")?;

    header(2, STEPS, "build the keyward CLI");
    exec(cargo().args(["build", "--quiet", "-p", "keyward-cli"]))?;
    let keyward = root.join("target").join("debug").join("keyward");

    header(
        3,
        STEPS,
        "render a KV v2 + PKI template offline (keyward render)",
    );
    let template = demo.join("app.conf.tmpl");
    let env_template = demo.join("app.env.tmpl");
    let secrets = demo.join("secrets.json");
    note(&format!(
        "template {} reads a KV v2 secret (pinned version) and issues a PKI certificate",
        rel(&template)
    ));
    note(&format!("fixture Vault responses: {}", rel(&secrets)));
    let rendered = capture(
        keyward_cmd(&keyward, &root)
            .arg("render")
            .arg("--template")
            .arg(rel(&template))
            .arg("--secrets")
            .arg(rel(&secrets))
            .arg("--plugin")
            .arg(rel(&renderer))
            .args(["--mount", "pki=pki"]),
        &[0],
    )?;
    print_indented(&rendered.1);
    note(&format!(
        "the same secret as environment variables, from {} (dotenv template, --target env)",
        rel(&env_template)
    ));
    let env = capture(
        keyward_cmd(&keyward, &root)
            .arg("render")
            .arg("--template")
            .arg(rel(&env_template))
            .arg("--secrets")
            .arg(rel(&secrets))
            .arg("--plugin")
            .arg(rel(&renderer))
            .args(["--target", "env", "--name", "APP_"]),
        &[0],
    )?;
    print_indented(&env.1);

    header(4, STEPS, "ask the rules policy (keyward policy check)");
    let settings = demo.join("policy.yaml");
    note(&format!("policy settings: {}", rel(&settings)));
    let mut outcomes = Vec::new();
    for (file, expect, what) in [
        (
            "request-allowed.yaml",
            0,
            "team-a's api reads its own database secret",
        ),
        (
            "request-denied.yaml",
            EXIT_DENIED,
            "a development workload asks for its own secret and a production one",
        ),
    ] {
        let request = demo.join(file);
        note(&format!("{what} ({})", rel(&request)));
        let (code, text) = capture(
            keyward_cmd(&keyward, &root)
                .args(["policy", "check"])
                .arg(rel(&policy))
                .arg("--settings")
                .arg(rel(&settings))
                .arg("--request")
                .arg(rel(&request)),
            &[expect],
        )?;
        print_indented(&text);
        outcomes.push(code);
    }

    let denied = outcomes.iter().filter(|c| **c == EXIT_DENIED).count();
    println!("\ndemo summary");
    println!(
        "  rendered {} into a {}-line file and {} into {} environment variables",
        rel(&template),
        rendered.1.lines().count(),
        rel(&env_template),
        env.1.lines().count()
    );
    println!("  each through plan -> decide -> fetch (fixture secrets) -> render -> check");
    println!(
        "  policy-rules: {} of {} requests fully allowed; the denial names its rule and reason",
        outcomes.len() - denied,
        outcomes.len()
    );
    println!(
        "  next: target/debug/keyward render --help, target/debug/keyward policy check --help, docs/cli.md"
    );
    Ok(())
}

/// `keyward`, run from the workspace root so paths print short.
fn keyward_cmd(keyward: &Path, root: &Path) -> Command {
    let mut cmd = Command::new(keyward);
    cmd.current_dir(root);
    cmd
}

/// Run a command, require one of `ok` exit codes, and return its code and
/// stdout (stderr is shown as-is).
fn capture(cmd: &mut Command, ok: &[i32]) -> Result<(i32, String)> {
    println!("$ {}", show(cmd));
    let out = cmd
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("cannot start `{}`", show(cmd)))?;
    let code = out.status.code().unwrap_or(-1);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !ok.contains(&code) {
        print_indented(&text);
        bail!("`{}` exited with {code}, expected {ok:?}", show(cmd));
    }
    Ok((code, text))
}

fn print_indented(text: &str) {
    for line in text.lines() {
        println!("    {line}");
    }
}

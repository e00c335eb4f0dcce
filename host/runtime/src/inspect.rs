//! Reading a component without compiling it: world, imports, exports,
//! digest and guest language. The import and export rules the loader
//! enforces live here too, so `keyward plugin inspect` and `load` agree.

use sha2::{Digest, Sha256};
use wasmparser::{KnownCustom, Parser, Payload};

use crate::config::World;
use crate::error::{Error, Result};

/// What a component is, as read from its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// The world its exports match, if any.
    pub world: Option<World>,
    /// The contract package it exports, e.g. `keyward:plugin`.
    pub package: Option<String>,
    /// The contract version it exports, e.g. `0.1.0`.
    pub version: Option<String>,
    /// Top-level imports, by name.
    pub imports: Vec<String>,
    /// Top-level exports, by name.
    pub exports: Vec<String>,
    /// Imports the loader would refuse, with the reason.
    pub refused_imports: Vec<(String, &'static str)>,
    /// `sha256:<hex>` of the bytes.
    pub digest: String,
    /// Size in bytes.
    pub size: usize,
    /// Guest language (`rust`, `c`, `go`, `python`, `javascript`), from the
    /// `producers` custom sections.
    pub language: Option<String>,
    /// Every `producers` entry found: (field, name, version), e.g.
    /// `("processed-by", "rustc", "1.95.0")`.
    pub producers: Vec<(String, String, String)>,
}

/// Inspect a component's bytes without compiling it.
pub fn inspect(bytes: &[u8]) -> Result<Inspection> {
    inspect_with_digest(bytes, digest(bytes))
}

/// [`inspect`] for a caller that has already computed the digest of
/// `bytes` (a load hashes the component once, not twice).
pub(crate) fn inspect_with_digest(bytes: &[u8], digest: String) -> Result<Inspection> {
    let parsed = parse(bytes).map_err(|detail| Error::NotAComponent {
        name: String::new(),
        detail,
    })?;
    let refused_imports = parsed
        .imports
        .iter()
        .filter_map(|i| check_import(i).err().map(|reason| (i.clone(), reason)))
        .collect();
    let contract = contract_export(&parsed.exports);
    Ok(Inspection {
        world: contract.as_ref().map(|c| c.world),
        package: contract.as_ref().map(|_| CONTRACT_PACKAGE.to_string()),
        version: contract.map(|c| c.version),
        imports: parsed.imports,
        exports: parsed.exports,
        refused_imports,
        digest,
        size: bytes.len(),
        language: language(&parsed.producers).map(str::to_string),
        producers: parsed.producers,
    })
}

/// `sha256:<hex>` of some bytes.
pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The package of the plugin contract.
pub(crate) const CONTRACT_PACKAGE: &str = "keyward:plugin";

struct Parsed {
    imports: Vec<String>,
    exports: Vec<String>,
    producers: Vec<(String, String, String)>,
}

fn parse(bytes: &[u8]) -> Result<Parsed, String> {
    let mut parsed = Parsed {
        imports: Vec::new(),
        exports: Vec::new(),
        producers: Vec::new(),
    };
    // Nested modules and components are flattened by `parse_all`; each
    // starts with a `Version` payload and ends with an `End` payload.
    let mut depth = 0usize;
    let mut seen_version = false;
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| e.to_string())?;
        match payload {
            Payload::Version { encoding, .. } => {
                if depth == 0 && seen_version {
                    return Err("trailing data after the component".into());
                }
                seen_version = true;
                if depth == 0 && encoding != wasmparser::Encoding::Component {
                    return Err("this is a core WebAssembly module; build a component \
                         (e.g. the wasm32-wasip2 target, componentize-py, jco componentize)"
                        .into());
                }
                depth += 1;
            }
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 1 => {
                for import in reader {
                    let import = import.map_err(|e| e.to_string())?;
                    parsed.imports.push(import.name.name.to_string());
                }
            }
            Payload::ComponentExportSection(reader) if depth == 1 => {
                for export in reader {
                    let export = export.map_err(|e| e.to_string())?;
                    parsed.exports.push(export.name.name.to_string());
                }
            }
            Payload::CustomSection(reader) => {
                if let KnownCustom::Producers(fields) = reader.as_known() {
                    // A malformed producers section says nothing about
                    // safety; ignore it rather than refuse the component.
                    for field in fields.into_iter().flatten() {
                        for value in field.values.into_iter().flatten() {
                            let entry = (
                                field.name.to_string(),
                                value.name.to_string(),
                                value.version.to_string(),
                            );
                            if !parsed.producers.contains(&entry) {
                                parsed.producers.push(entry);
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    if !seen_version {
        return Err("empty input".into());
    }
    if depth != 0 {
        return Err("the component is truncated".into());
    }
    Ok(parsed)
}

/// The guest language, from `producers` entries. Interpreters first: a
/// Python component also carries the C of CPython and the Rust of
/// componentize-py's runtime.
pub(crate) fn language(producers: &[(String, String, String)]) -> Option<&'static str> {
    let has = |field: &str, pred: &dyn Fn(&str) -> bool| {
        producers
            .iter()
            .any(|(f, name, _)| f == field && pred(&name.to_ascii_lowercase()))
    };
    if has("processed-by", &|n| n.starts_with("componentize-py"))
        || has("language", &|n| n == "python")
    {
        Some("python")
    } else if has("processed-by", &|n| {
        n.starts_with("componentize-js") || n.starts_with("starlingmonkey") || n == "jco"
    }) || has("language", &|n| n == "javascript")
    {
        Some("javascript")
    } else if has("processed-by", &|n| n == "tinygo" || n == "wit-bindgen-go")
        || has("language", &|n| n == "go")
    {
        Some("go")
    } else if has("language", &|n| n == "rust")
        || has("processed-by", &|n| n == "rustc" || n == "wit-bindgen-rust")
    {
        // `wit-bindgen-rust` stays when a stripped build drops rustc's own
        // entries (the `plugin` profile strips the core module).
        Some("rust")
    } else if has("language", &|n| {
        n == "c" || n.starts_with("c11") || n.starts_with("c99") || n.starts_with("c++")
    }) || has("processed-by", &|n| n == "clang" || n == "wit-bindgen-c")
    {
        Some("c")
    } else {
        None
    }
}

/// WASI packages the sandbox links (each denied at call time where it
/// could reach outside: no preopens, no sockets, no environment).
const WASI_PACKAGES: &[&str] = &["cli", "clocks", "filesystem", "io", "random", "sockets"];

/// Whether an import is allowed: `keyward:plugin/*@0.1.x` or one of the
/// linked WASI packages at `@0.2.x`. `Err` carries the reason.
pub(crate) fn check_import(name: &str) -> Result<(), &'static str> {
    let Some((path, version)) = name.split_once('@') else {
        return Err("unversioned imports are not provided");
    };
    let Some((package, _interface)) = path.split_once('/') else {
        return Err("only interface imports are provided");
    };
    match package {
        CONTRACT_PACKAGE => {
            if version.starts_with("0.1.") {
                Ok(())
            } else {
                Err("this host provides keyward:plugin@0.1.x only")
            }
        }
        "wasi:http" => Err("plugins get no network access (wasi:http is never linked)"),
        _ => match package.strip_prefix("wasi:") {
            Some(pkg) if WASI_PACKAGES.contains(&pkg) => {
                if version.starts_with("0.2.") {
                    Ok(())
                } else {
                    Err("this host provides WASI 0.2.x only")
                }
            }
            Some(_) => Err("this WASI package is not provided to plugins"),
            None => Err("unknown package"),
        },
    }
}

pub(crate) struct ContractExport {
    pub(crate) world: World,
    pub(crate) version: String,
}

/// The world a component's exports match: exactly one of
/// `keyward:plugin/decider@0.1.x` or `keyward:plugin/render@0.1.x`.
pub(crate) fn contract_export(exports: &[String]) -> Option<ContractExport> {
    let mut found = exports.iter().filter_map(|e| {
        let (path, version) = e.split_once('@')?;
        if !version.starts_with("0.1.") {
            return None;
        }
        let world = match path {
            "keyward:plugin/decider" => World::Policy,
            "keyward:plugin/render" => World::Renderer,
            _ => return None,
        };
        Some(ContractExport {
            world,
            version: version.to_string(),
        })
    });
    let first = found.next()?;
    if found.next().is_some() {
        // One component, one world: exporting both is ambiguous.
        return None;
    }
    Some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(field: &str, name: &str) -> (String, String, String) {
        (field.into(), name.into(), "1".into())
    }

    #[test]
    fn imports() {
        let cases = [
            ("keyward:plugin/host@0.1.0", true),
            ("keyward:plugin/types@0.1.3", true),
            ("keyward:plugin/host@0.2.0", false),
            ("wasi:cli/environment@0.2.0", true),
            ("wasi:io/streams@0.2.6", true),
            ("wasi:sockets/tcp@0.2.0", true),
            ("wasi:http/outgoing-handler@0.2.0", false),
            ("wasi:keyvalue/store@0.2.0", false),
            ("wasi:cli/environment@0.3.0", false),
            ("evil:thing/x", false),
            ("evil:thing/x@1.0.0", false),
            ("log", false),
        ];
        for (name, ok) in cases {
            assert_eq!(check_import(name).is_ok(), ok, "{name}");
        }
    }

    #[test]
    fn worlds() {
        let w = |names: &[&str]| {
            contract_export(&names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .map(|c| c.world)
        };
        assert_eq!(w(&["keyward:plugin/decider@0.1.0"]), Some(World::Policy));
        assert_eq!(w(&["keyward:plugin/render@0.1.2"]), Some(World::Renderer));
        assert_eq!(w(&["keyward:plugin/render@0.2.0"]), None);
        assert_eq!(w(&["wasi:cli/run@0.2.0"]), None);
        assert_eq!(
            w(&[
                "keyward:plugin/decider@0.1.0",
                "keyward:plugin/render@0.1.0"
            ]),
            None
        );
        assert_eq!(w(&[]), None);
    }

    #[test]
    fn languages() {
        type Producers<'a> = &'a [(String, String, String)];
        let cases: &[(Producers<'_>, Option<&str>)] = &[
            (
                &[p("language", "Rust"), p("processed-by", "rustc")],
                Some("rust"),
            ),
            (
                &[
                    p("language", "C11"),
                    p("processed-by", "clang"),
                    p("processed-by", "rustc"),
                    p("processed-by", "componentize-py"),
                ],
                Some("python"),
            ),
            (&[p("processed-by", "componentize-js")], Some("javascript")),
            (&[p("processed-by", "StarlingMonkey")], Some("javascript")),
            (&[p("processed-by", "clang")], Some("c")),
            (&[p("processed-by", "TinyGo")], Some("go")),
            (&[p("processed-by", "wit-component")], None),
            // A stripped Rust build: wasi-libc's bindings bring wit-bindgen-c.
            (
                &[
                    p("processed-by", "wit-component"),
                    p("processed-by", "wit-bindgen-rust"),
                    p("processed-by", "wit-bindgen-c"),
                ],
                Some("rust"),
            ),
            (&[p("processed-by", "wit-bindgen-c")], Some("c")),
        ];
        for (producers, want) in cases {
            assert_eq!(language(producers), *want, "{producers:?}");
        }
    }

    #[test]
    fn not_a_component() {
        assert!(matches!(
            inspect(b"\0asm\x01\0\0\0"),
            Err(Error::NotAComponent { .. })
        ));
        assert!(matches!(
            inspect(b"garbage"),
            Err(Error::NotAComponent { .. })
        ));
    }
}

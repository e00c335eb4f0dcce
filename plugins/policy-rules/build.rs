//! On wasm32 the crate is `no_std`, and `core` leaves `memcmp` to the C
//! library: link wasi-libc's (from the target's self-contained sysroot,
//! already on the linker's search path). It brings no WASI import with it.

fn main() {
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo:rustc-link-arg-cdylib=-lc");
    }
}

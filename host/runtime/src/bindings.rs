//! The one `bindgen!` of the project's host side.
//!
//! A component targets one world, but the host needs both: an inline world
//! that imports `host` and exports both `decider` and `render` generates
//! every type and the per-interface `GuestIndices`, which are used one at a
//! time (a policy component is only ever asked for `decider`, a renderer
//! for `render`).

wasmtime::component::bindgen!({
    path: "../../wit",
    inline: "
        package keyward:runtime;

        world plugins {
            import keyward:plugin/host@0.1.0;
            export keyward:plugin/decider@0.1.0;
            export keyward:plugin/render@0.1.0;
        }
    ",
    world: "keyward:runtime/plugins",
});

pub(crate) use exports::keyward::plugin::{decider, render};
pub(crate) use keyward::plugin::{host, types};

//! A discrete-event simulator of a service mesh.
//!
//! # Layout
//! (filled as the modules arrive)
#![forbid(unsafe_code)]

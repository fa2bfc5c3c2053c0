//! Metadata in MP4/MOV: the box walker, keys/ilst and user data: see meta_common.rs.
#![no_main]
#![forbid(unsafe_code)]

#[path = "meta_common.rs"]
mod meta_common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| meta_common::check(b"\0\0\0\x10ftypisom\0\0\0\0", data));

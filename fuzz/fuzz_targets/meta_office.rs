//! Metadata in Office and OpenDocument archives: zip entries and property XML (seeded
//! with a DOCX and an ODT): see meta_common.rs.
#![no_main]
#![forbid(unsafe_code)]

#[path = "meta_common.rs"]
mod meta_common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| meta_common::check(b"", data));

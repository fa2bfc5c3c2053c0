//! Metadata in PDF: lopdf, the Info dictionary and XMP: see meta_common.rs.
#![no_main]
#![forbid(unsafe_code)]

#[path = "meta_common.rs"]
mod meta_common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| meta_common::check(b"%PDF-1.4\n", data));

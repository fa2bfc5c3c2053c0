//! Metadata in photos (JPEG, PNG, WebP, HEIF): EXIF, XMP and img-parts'
//! segments; see meta_common.rs.
#![no_main]
#![forbid(unsafe_code)]

#[path = "meta_common.rs"]
mod meta_common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the container, so every input reaches a parser.
    let prefix: &[u8] = match data.first().map(|b| b % 4) {
        Some(0) => b"\xff\xd8\xff",
        Some(1) => b"\x89PNG\r\n\x1a\n",
        Some(2) => b"RIFF\0\0\0\0WEBP",
        _ => b"\0\0\0\x18ftypheic",
    };
    meta_common::check(prefix, data)
});

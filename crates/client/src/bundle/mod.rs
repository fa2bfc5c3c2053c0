//! Export bundles in the root package: the format and its offline
//! verification are the core's (`custos_core::bundle`, re-exported here
//! under the path the CLI, the tests and the fuzz targets have always
//! named); this module adds what needs more than reading files: packing a
//! bundle into a .tar and unpacking one (`archive`), and decrypting a
//! verified bundle with a holder's identity (`decrypt`).

mod archive;
pub mod decrypt;

pub use custos_core::bundle::*;

pub use self::archive::{unpack_archive, write_archive};

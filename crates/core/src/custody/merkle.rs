//! RFC 6962 / RFC 9162 Merkle tree hashing, proof construction and proof
//! verification. Pure logic: node storage is reached through a closure, so the
//! same code serves the sled-backed log and the in-memory trees of the tests.
//!
//! Hand-written because the log keeps its nodes in its own store and must
//! build proofs from them; the RFC's algorithms are short, and the RFC 6962
//! test vectors (`tests/it/rfc6962_vectors.rs`) hold this code to them.

use sha2::{Digest, Sha256};

/// A SHA-256 tree hash.
pub type Hash = [u8; 32];

/// Why a proof was rejected. Verification failures carry no detail an
/// attacker could use beyond which rule failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProofError {
    /// The leaf index is not inside the tree.
    #[error("leaf index {index} is outside a tree of size {size}")]
    IndexOutOfRange {
        /// Requested leaf index.
        index: u64,
        /// Tree size.
        size: u64,
    },
    /// The sizes cannot be related by a consistency proof.
    #[error("tree sizes {0} and {1} cannot be proven consistent")]
    BadSizes(u64, u64),
    /// The proof has the wrong number of hashes for the sizes given.
    #[error("proof has the wrong length")]
    WrongLength,
    /// The recomputed root does not match the expected root.
    #[error("recomputed root does not match")]
    RootMismatch,
}

/// Leaf hash: `SHA-256(0x00 || bytes)`.
pub fn leaf_hash(bytes: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(bytes);
    h.finalize().into()
}

/// Interior node hash: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Root of the empty tree: `SHA-256("")`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// Largest power of two strictly smaller than `n` (`n >= 2`).
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// Hash of the leaves `[lo, hi)`, read from stored perfect subtrees.
///
/// `node(level, index)` returns the root of the perfect subtree of height
/// `level` covering leaves `[index << level, (index + 1) << level)`. Every range
/// this module asks for starts at a multiple of its largest power-of-two split,
/// so perfect ranges are always aligned.
pub fn subtree_hash<E>(lo: u64, hi: u64, node: &mut impl FnMut(u32, u64) -> Result<Hash, E>) -> Result<Hash, E> {
    let n = hi - lo;
    if n == 0 {
        return Ok(empty_root());
    }
    if n.is_power_of_two() {
        let level = n.trailing_zeros();
        return node(level, lo >> level);
    }
    let k = split_point(n);
    let left = subtree_hash(lo, lo + k, node)?;
    let right = subtree_hash(lo + k, hi, node)?;
    Ok(node_hash(&left, &right))
}

/// Root hash of a tree of `size` leaves.
pub fn root<E>(size: u64, node: &mut impl FnMut(u32, u64) -> Result<Hash, E>) -> Result<Hash, E> {
    subtree_hash(0, size, node)
}

/// The perfect-subtree nodes that become complete when leaf `index` (with
/// hash `leaf`) is appended: `(level, index, hash)`, the leaf itself first.
pub fn nodes_completed_by<E>(
    index: u64,
    leaf: Hash,
    node: &mut impl FnMut(u32, u64) -> Result<Hash, E>,
) -> Result<Vec<(u32, u64, Hash)>, E> {
    let mut out = vec![(0, index, leaf)];
    let (mut level, mut idx, mut hash) = (0u32, index, leaf);
    while idx & 1 == 1 {
        let sibling = node(level, idx - 1)?;
        hash = node_hash(&sibling, &hash);
        level += 1;
        idx >>= 1;
        out.push((level, idx, hash));
    }
    Ok(out)
}

/// Inclusion proof of leaf `index` in the tree of `size` leaves
/// (RFC 9162 section 2.1.3.1), ordered from the leaf upwards.
pub fn inclusion_proof<E>(
    index: u64,
    size: u64,
    node: &mut impl FnMut(u32, u64) -> Result<Hash, E>,
) -> Result<Result<Vec<Hash>, ProofError>, E> {
    if index >= size {
        return Ok(Err(ProofError::IndexOutOfRange { index, size }));
    }
    let mut proof = Vec::new();
    path(index, 0, size, node, &mut proof)?;
    Ok(Ok(proof))
}

fn path<E>(
    m: u64,
    lo: u64,
    hi: u64,
    node: &mut impl FnMut(u32, u64) -> Result<Hash, E>,
    out: &mut Vec<Hash>,
) -> Result<(), E> {
    let n = hi - lo;
    if n <= 1 {
        return Ok(());
    }
    let k = split_point(n);
    if m < k {
        path(m, lo, lo + k, node, out)?;
        out.push(subtree_hash(lo + k, hi, node)?);
    } else {
        path(m - k, lo + k, hi, node, out)?;
        out.push(subtree_hash(lo, lo + k, node)?);
    }
    Ok(())
}

/// Consistency proof between tree sizes `size1 <= size2`
/// (RFC 9162 section 2.1.4.1).
pub fn consistency_proof<E>(
    size1: u64,
    size2: u64,
    node: &mut impl FnMut(u32, u64) -> Result<Hash, E>,
) -> Result<Result<Vec<Hash>, ProofError>, E> {
    if size1 == 0 || size1 > size2 {
        return Ok(Err(ProofError::BadSizes(size1, size2)));
    }
    let mut proof = Vec::new();
    if size1 < size2 {
        subproof(size1, 0, size2, true, node, &mut proof)?;
    }
    Ok(Ok(proof))
}

fn subproof<E>(
    m: u64,
    lo: u64,
    hi: u64,
    complete: bool,
    node: &mut impl FnMut(u32, u64) -> Result<Hash, E>,
    out: &mut Vec<Hash>,
) -> Result<(), E> {
    let n = hi - lo;
    if m == n {
        if !complete {
            out.push(subtree_hash(lo, hi, node)?);
        }
        return Ok(());
    }
    let k = split_point(n);
    if m <= k {
        subproof(m, lo, lo + k, complete, node, out)?;
        out.push(subtree_hash(lo + k, hi, node)?);
    } else {
        subproof(m - k, lo + k, hi, false, node, out)?;
        out.push(subtree_hash(lo, lo + k, node)?);
    }
    Ok(())
}

/// Verify that `leaf` is leaf `index` of the tree of `size` leaves whose root
/// is `root` (RFC 9162 section 2.1.3.2).
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &[u8]) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            return Err(ProofError::WrongLength);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::WrongLength);
    }
    if r.as_slice() != root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Verify that the tree of `size1` leaves with root `root1` is a prefix of the
/// tree of `size2` leaves with root `root2` (RFC 9162 section 2.1.4.2).
///
/// A proof from the empty tree proves nothing, so `size1 == 0` is rejected.
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    proof: &[Hash],
    root1: &[u8],
    root2: &[u8],
) -> Result<(), ProofError> {
    if size1 == 0 || size1 > size2 {
        return Err(ProofError::BadSizes(size1, size2));
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength);
        }
        return if root1 == root2 {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    let first: Hash = root1.try_into().map_err(|_| ProofError::RootMismatch)?;
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if size1.is_power_of_two() {
        path.push(first);
    }
    path.extend_from_slice(proof);
    let Some((seed, rest)) = path.split_first() else {
        return Err(ProofError::WrongLength);
    };
    let (mut fn_, mut sn) = (size1 - 1, size2 - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (*seed, *seed);
    for c in rest {
        if sn == 0 {
            return Err(ProofError::WrongLength);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::WrongLength);
    }
    if fr.as_slice() != root1 || sr.as_slice() != root2 {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// A node the in-memory tree does not hold (a size beyond the tree).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MissingNode;

/// An in-memory tree for tests and for verifiers that rebuild a whole log.
#[derive(Default, Clone)]
pub struct MemoryTree {
    /// `levels[l][i]` is the perfect subtree node `(l, i)`.
    levels: Vec<Vec<Hash>>,
}

impl MemoryTree {
    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// Append a leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let index = self.size();
        let levels = &self.levels;
        let nodes = nodes_completed_by(index, leaf, &mut |l, i| {
            Ok::<_, MissingNode>(levels[l as usize][i as usize])
        })
        .expect("memory tree lookups cannot fail");
        for (level, _, hash) in nodes {
            if self.levels.len() <= level as usize {
                self.levels.push(Vec::new());
            }
            self.levels[level as usize].push(hash);
        }
    }

    /// Look up a stored perfect-subtree node.
    pub fn node(&self, level: u32, index: u64) -> Result<Hash, MissingNode> {
        self.levels
            .get(level as usize)
            .and_then(|l| l.get(index as usize))
            .copied()
            .ok_or(MissingNode)
    }

    /// Root of the first `size` leaves.
    pub fn root_at(&self, size: u64) -> Hash {
        root(size, &mut |l, i| self.node(l, i)).expect("size within tree")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference MTH straight from the RFC definition, for cross-checking.
    fn reference_root(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split_point(n as u64) as usize;
                node_hash(&reference_root(&leaves[..k]), &reference_root(&leaves[k..]))
            }
        }
    }

    fn tree(n: u64) -> (MemoryTree, Vec<Hash>) {
        let mut t = MemoryTree::default();
        let mut leaves = Vec::new();
        for i in 0..n {
            let h = leaf_hash(&i.to_be_bytes());
            t.push(h);
            leaves.push(h);
        }
        (t, leaves)
    }

    #[test]
    fn roots_match_the_rfc_definition_for_every_prefix() {
        let (t, leaves) = tree(70);
        for size in 0..=70u64 {
            assert_eq!(t.root_at(size), reference_root(&leaves[..size as usize]), "size {size}");
        }
    }

    #[test]
    fn every_inclusion_proof_verifies_and_a_flipped_bit_fails() {
        let (t, leaves) = tree(33);
        for size in 1..=33u64 {
            let root = t.root_at(size);
            for index in 0..size {
                let proof = inclusion_proof(index, size, &mut |l, i| t.node(l, i)).unwrap().unwrap();
                verify_inclusion(index, size, &leaves[index as usize], &proof, &root).unwrap();
                if let Some(first) = proof.first() {
                    let mut bad = proof.clone();
                    bad[0] = {
                        let mut b = *first;
                        b[0] ^= 1;
                        b
                    };
                    assert!(verify_inclusion(index, size, &leaves[index as usize], &bad, &root).is_err());
                }
            }
        }
    }

    #[test]
    fn every_consistency_proof_verifies_and_wrong_roots_fail() {
        let (t, _) = tree(33);
        for size2 in 1..=33u64 {
            for size1 in 1..=size2 {
                let proof = consistency_proof(size1, size2, &mut |l, i| t.node(l, i))
                    .unwrap()
                    .unwrap();
                let (r1, r2) = (t.root_at(size1), t.root_at(size2));
                verify_consistency(size1, size2, &proof, &r1, &r2).unwrap();
                if size1 < size2 {
                    assert!(verify_consistency(size1, size2, &proof, &r2, &r2).is_err());
                }
            }
        }
    }

    #[test]
    fn out_of_range_requests_are_refused() {
        let (t, _) = tree(4);
        let mut get = |l, i| t.node(l, i);
        assert!(inclusion_proof(4, 4, &mut get).unwrap().is_err());
        assert!(consistency_proof(0, 4, &mut get).unwrap().is_err());
        assert!(consistency_proof(5, 4, &mut get).unwrap().is_err());
    }
}

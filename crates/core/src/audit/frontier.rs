//! The right edge of the log's Merkle tree: the roots of the perfect
//! subtrees that make up its leaves so far, largest first. It is all an
//! auditor needs to carry on appending and to compute the current root,
//! in at most 64 hashes whatever the log's size (RFC 6962's tree splits at
//! the largest power of two, so its root folds these from the right).

use crate::custody::merkle::{self, Hash};

/// The perfect subtrees of a tree of `size` leaves, largest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// `(height, root)` of each perfect subtree, heights decreasing.
    subtrees: Vec<(u32, Hash)>,
}

impl Frontier {
    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Append a leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        self.subtrees.push((0, leaf));
        self.size += 1;
        // Two subtrees of equal height are siblings: merge them, as a
        // binary counter carries.
        while let [.., (hl, left), (hr, right)] = self.subtrees[..] {
            if hl != hr {
                break;
            }
            self.subtrees.truncate(self.subtrees.len() - 2);
            self.subtrees.push((hl + 1, merkle::node_hash(&left, &right)));
        }
    }

    /// Root of the tree.
    pub fn root(&self) -> Hash {
        let mut nodes = self.subtrees.iter().rev();
        let Some((_, last)) = nodes.next() else {
            return merkle::empty_root();
        };
        nodes.fold(*last, |right, (_, left)| merkle::node_hash(left, &right))
    }

    /// The subtree roots, largest first (what a state file keeps).
    pub fn hashes(&self) -> Vec<Hash> {
        self.subtrees.iter().map(|(_, h)| *h).collect()
    }

    /// The frontier of a tree of `size` leaves from its subtree roots,
    /// largest first; `None` if their number is not the one `size` makes.
    pub fn from_hashes(size: u64, hashes: &[Hash]) -> Option<Self> {
        if hashes.len() != size.count_ones() as usize {
            return None;
        }
        let heights = (0..64u32).rev().filter(|h| size >> h & 1 == 1);
        Some(Frontier {
            size,
            subtrees: heights.zip(hashes.iter().copied()).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::custody::merkle::MemoryTree;

    #[test]
    fn the_frontier_roots_match_the_whole_tree_and_survive_a_round_trip() {
        let mut tree = MemoryTree::default();
        let mut frontier = Frontier::default();
        assert_eq!(frontier.root(), tree.root_at(0));
        for i in 0u32..300 {
            let leaf = merkle::leaf_hash(&i.to_be_bytes());
            tree.push(leaf);
            frontier.push(leaf);
            assert_eq!(frontier.root(), tree.root_at(tree.size()), "size {}", i + 1);
            let again = Frontier::from_hashes(frontier.size(), &frontier.hashes()).unwrap();
            assert_eq!(again, frontier);
        }
        assert_eq!(Frontier::from_hashes(3, &[[0; 32]]), None);
    }
}

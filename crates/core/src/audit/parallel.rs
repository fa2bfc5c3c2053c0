//! Work spread over all cores for the parts of an audit that do not
//! depend on order: parsing and hashing entries, checking signatures.
//! Scoped threads of the standard library: a page of entries is large
//! enough that starting them costs little next to the work.

/// Below this many items the work stays on the calling thread.
const SERIAL_BELOW: usize = 64;

/// `f` over `items`, in order, spread over the machine's cores.
pub(crate) fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads == 1 || items.len() < SERIAL_BELOW {
        return items.iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|s| {
        let parts: Vec<_> = items
            .chunks(chunk)
            .map(|part| s.spawn(move || part.iter().map(f).collect::<Vec<R>>()))
            .collect();
        parts
            .into_iter()
            .flat_map(|p| p.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect()
    })
}

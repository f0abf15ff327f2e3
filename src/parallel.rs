//! Running jobs side by side: the demo's payout streams and proof readers, the walkers of a full
//! scan of the ledger.

use crate::store::StoreError;

/// Readers of one large reading at once, each on a connection of its own: the ledger walk's
/// walkers, the spot check's population runs. This machine has two cores, and one reader kept one
/// of them busy (SQLite building the pages, then the reader taking them); more readers than cores
/// only take turns.
pub(crate) const READERS: usize = 2;

/// A job that may run on a thread of its own.
pub(crate) type Job<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Runs `jobs` side by side and returns their results in order. On a runtime with worker threads
/// (the command line's) each job runs on an operating-system thread of its own, so the work each
/// does between its statements (judging entries, hashing, writing bank files and reports) uses
/// both cores; on a single-threaded runtime (a test's) they are polled together on the one thread.
pub(crate) async fn side_by_side<'a, T: Send + 'a>(
    jobs: Vec<Job<'a, T>>,
) -> Result<Vec<T>, StoreError> {
    let handle = tokio::runtime::Handle::current();
    if jobs.len() < 2 || handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
        return futures_util::future::try_join_all(jobs).await;
    }
    tokio::task::block_in_place(|| {
        std::thread::scope(|scope| {
            let threads: Vec<_> = jobs
                .into_iter()
                .map(|job| {
                    let handle = handle.clone();
                    scope.spawn(move || handle.block_on(job))
                })
                .collect();
            threads
                .into_iter()
                .map(|t| {
                    t.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        })
    })
}

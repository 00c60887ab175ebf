//! Per-file work on a fixed number of threads, results in input order.

use anyhow::{Result, anyhow};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The target machines have 2 cores.
const THREADS: usize = 2;

/// Runs `job` over every item on [`THREADS`] threads, handing out items one at a time so a
/// long file does not hold up a whole share. Results come back in input order, so output does
/// not depend on scheduling; the first error in input order wins. A progress bar labelled
/// `what` is drawn on stderr when it is a terminal.
pub fn parallel_map<T, R, F>(what: &str, items: &[T], job: F) -> Result<Vec<R>>
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> Result<R> + Sync,
{
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::with_draw_target(Some(items.len() as u64), ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} files {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(what.to_string());
    let next = AtomicUsize::new(0);
    let slots: Mutex<Vec<Option<Result<R>>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..THREADS.min(items.len()) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let out = job(item);
                    bar.inc(1);
                    if let Ok(mut slots) = slots.lock() {
                        slots[i] = Some(out);
                    }
                }
            });
        }
    });
    bar.finish_and_clear();
    slots
        .into_inner()
        .map_err(|_| anyhow!("a worker thread panicked while {what}"))?
        .into_iter()
        .enumerate()
        .map(|(i, slot)| slot.unwrap_or_else(|| Err(anyhow!("{what}: item {i} was not processed"))))
        .collect()
}

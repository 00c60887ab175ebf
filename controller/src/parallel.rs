//! Independent work items (files, simulations) on a few threads, results in input order.

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
    parallel_map_on(what, items, THREADS, job)
}

/// [`parallel_map`] on `threads` threads (at least one).
pub fn parallel_map_on<T, R, F>(what: &str, items: &[T], threads: usize, job: F) -> Result<Vec<R>>
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
        ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(what.to_string());
    let next = AtomicUsize::new(0);
    let slots: Mutex<Vec<Option<Result<R>>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..threads.clamp(1, items.len().max(1)) {
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

#[cfg(test)]
mod tests {
    use super::parallel_map_on;

    #[test]
    fn results_come_back_in_input_order_whatever_finishes_first() {
        let items: Vec<u64> = (0..40).collect();
        // Later items finish first: item i sleeps (40 − i) % 7 ms.
        let job = |&i: &u64| {
            std::thread::sleep(std::time::Duration::from_millis((40 - i) % 7));
            Ok(i * 2)
        };
        let want: Vec<u64> = items.iter().map(|i| i * 2).collect();
        for threads in [0, 1, 3, 8, 100] {
            let got = parallel_map_on("doubling", &items, threads, job).expect("no errors");
            assert_eq!(got, want, "{threads} threads");
        }
        let none = parallel_map_on("doubling", &[] as &[u64], 4, job).expect("no items");
        assert!(none.is_empty());
    }

    #[test]
    fn the_first_error_in_input_order_wins() {
        let items: Vec<u64> = (0..20).collect();
        let job = |&i: &u64| {
            if i % 5 == 3 {
                Err(anyhow::anyhow!("item {i}"))
            } else {
                Ok(i)
            }
        };
        let err = parallel_map_on("checking", &items, 3, job).expect_err("items 3, 8, … fail");
        assert_eq!(err.to_string(), "item 3");
    }
}

//! Running third-party code that can panic on bad input (the `tokenizers` crate on a
//! malformed tokenizer.json) as an error instead of a crash. The panic message is captured
//! instead of printed, so the user sees one clear error line, not a backtrace.

use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, PanicHookInfo};
use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};

thread_local! {
    /// True while this thread runs inside [`catch_panic`].
    static GUARDED: Cell<bool> = const { Cell::new(false) };
    static MESSAGE: RefCell<Option<String>> = const { RefCell::new(None) };
}

static HOOK: Once = Once::new();
/// Guarded panics so far in this process (the fuzzer reports them).
static CAUGHT: AtomicU64 = AtomicU64::new(0);

/// How many panics [`catch_panic`] has turned into errors in this process.
pub fn caught_count() -> u64 {
    CAUGHT.load(Ordering::Relaxed)
}

/// Installs (once) a panic hook that records guarded panics and passes every other panic to
/// the hook that was there before.
fn install_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if GUARDED.with(Cell::get) {
                CAUGHT.fetch_add(1, Ordering::Relaxed);
                MESSAGE.with(|m| *m.borrow_mut() = Some(describe(info)));
            } else {
                previous(info);
            }
        }));
    });
}

fn describe(info: &PanicHookInfo<'_>) -> String {
    let payload = info.payload();
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string());
    match info.location() {
        Some(at) => format!("{text} (at {}:{})", at.file(), at.line()),
        None => text,
    }
}

/// `f()`, or the message of the panic it raised.
pub fn catch_panic<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    install_hook();
    let was = GUARDED.with(|g| g.replace(true));
    let result = std::panic::catch_unwind(AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(was));
    result.map_err(|_| {
        MESSAGE
            .with(|m| m.borrow_mut().take())
            .unwrap_or_else(|| "unknown panic".to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_its_message() {
        let r: Result<(), String> = catch_panic(|| panic!("bad merge {}", 7));
        let msg = r.err().unwrap_or_default();
        assert!(msg.starts_with("bad merge 7 (at "), "{msg}");
        assert_eq!(catch_panic(|| 5), Ok(5));
    }

    #[test]
    fn nested_guards_restore_the_outer_state() {
        let outer = catch_panic(|| {
            let inner: Result<(), String> = catch_panic(|| panic!("inner"));
            assert!(inner.is_err());
            panic!("outer");
        });
        assert!(outer.err().unwrap_or_default().starts_with("outer"));
        assert!(!GUARDED.with(Cell::get));
    }
}

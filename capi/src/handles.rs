//! The live handles. A handle C holds is a number in pointer's clothing: the key of an object
//! here, never its address. So a freed handle, one freed twice, or one of another kind is found
//! out and reported instead of reading freed memory, and a model freed on one thread while
//! another runs it stays alive until that call ends (each call holds its own `Arc`).
//!
//! Keys are never reused in a process (a 64-bit counter), so an old handle cannot alias a new
//! object.

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use crate::status::{Failure, PrismStatus, Result, invalid};

type Object = Arc<dyn Any + Send + Sync>;

static LIVE: LazyLock<Mutex<HashMap<usize, Object>>> = LazyLock::new(Default::default);
static NEXT: AtomicUsize = AtomicUsize::new(1);

/// Keeps `object` and returns its handle, `*mut H` (`H` is the opaque type C sees).
pub(crate) fn insert<H, T: Any + Send + Sync>(object: T) -> *mut H {
    let key = NEXT.fetch_add(1, Ordering::Relaxed);
    LIVE.lock().unwrap_or_else(PoisonError::into_inner).insert(key, Arc::new(object));
    std::ptr::without_provenance_mut(key)
}

/// The object behind a live handle of kind `T`; `what` names the kind in messages.
pub(crate) fn get<H, T: Any + Send + Sync>(handle: *const H, what: &str) -> Result<Arc<T>> {
    if handle.is_null() {
        return Err(invalid(format!("the {what} is a null pointer")));
    }
    let object = LIVE.lock().unwrap_or_else(PoisonError::into_inner).get(&handle.addr()).cloned();
    object.and_then(|o| o.downcast::<T>().ok()).ok_or_else(|| dead(what))
}

/// Forgets a handle of kind `T`. A null handle is nothing to free.
pub(crate) fn remove<H, T: Any + Send + Sync>(handle: *mut H, what: &str) -> Result<()> {
    if handle.is_null() {
        return Ok(());
    }
    let mut live = LIVE.lock().unwrap_or_else(PoisonError::into_inner);
    match live.get(&handle.addr()) {
        Some(o) if o.is::<T>() => {
            live.remove(&handle.addr());
            Ok(())
        }
        _ => Err(dead(what)),
    }
}

fn dead(what: &str) -> Failure {
    Failure {
        status: PrismStatus::InvalidHandle,
        message: format!("not a live {what}: never made, already freed, or a handle of another kind"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct A;
    struct B;

    #[test]
    fn freed_and_foreign_handles_are_refused() {
        let a = insert::<u8, A>(A);
        let b = insert::<u8, B>(B);
        assert!(get::<u8, A>(a, "A").is_ok());
        assert_eq!(get::<u8, A>(b, "A").err().map(|f| f.status), Some(PrismStatus::InvalidHandle));
        assert!(remove::<u8, A>(b, "A").is_err(), "a B is not freed as an A");
        remove::<u8, A>(a, "A").expect("live");
        assert_eq!(get::<u8, A>(a, "A").err().map(|f| f.status), Some(PrismStatus::InvalidHandle));
        assert!(remove::<u8, A>(a, "A").is_err(), "freed twice");
        assert!(get::<u8, B>(b, "B").is_ok());
        assert_eq!(get::<u8, A>(std::ptr::null(), "A").err().map(|f| f.status), Some(PrismStatus::InvalidArgument));
    }
}

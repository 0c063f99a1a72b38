//! Status codes, the calling thread's last error message, and the checks every entry point makes
//! on what C hands it (null pointers, lengths, text) before touching it.

use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};

use prism_runtime::Error as RuntimeError;

/// What a call did. `PRISM_STATUS_OK` is 0; every other value comes with a message from
/// `prism_last_error()`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrismStatus {
    Ok = 0,
    /// A null pointer, a buffer of the wrong length, a value out of range, text that is not UTF-8.
    InvalidArgument = 1,
    /// A handle that is not live: never made, already freed, or of another kind.
    InvalidHandle = 2,
    /// A file that cannot be read.
    Io = 3,
    /// A file or buffer that is not what it should be: a corrupt model, an undecodable image.
    Format = 4,
    /// Data of a shape the model does not take, or a call the model's task does not have
    /// (a scene given to an image model).
    Shape = 5,
    /// An engine or execution provider that is missing or failed.
    Engine = 6,
    /// A bug in the library, caught before it reached the host (a library built with
    /// `panic = "abort"`, as `scripts/build-c-example.sh --small` builds it, aborts instead).
    Panic = 7,
}

/// An error on its way to C: a status and its message.
#[derive(Debug)]
pub(crate) struct Failure {
    pub status: PrismStatus,
    pub message: String,
}

pub(crate) type Result<T> = std::result::Result<T, Failure>;

pub(crate) fn invalid(message: impl Into<String>) -> Failure {
    Failure { status: PrismStatus::InvalidArgument, message: message.into() }
}

impl From<RuntimeError> for Failure {
    fn from(e: RuntimeError) -> Failure {
        let status = match &e {
            RuntimeError::Io { .. } => PrismStatus::Io,
            RuntimeError::Format { .. } | RuntimeError::Model(_) | RuntimeError::Data(_) => PrismStatus::Format,
            RuntimeError::Shape(_) => PrismStatus::Shape,
            RuntimeError::Engine(_) => PrismStatus::Engine,
            RuntimeError::Invalid(_) => PrismStatus::InvalidArgument,
        };
        Failure { status, message: e.to_string() }
    }
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// The message of the calling thread's last failed call, one line of UTF-8; `""` when none
/// failed. Valid until the next failing call on this thread.
#[unsafe(no_mangle)]
pub extern "C" fn prism_last_error() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

/// A static name for a status: `"ok"`, `"invalid argument"`, ...
#[unsafe(no_mangle)]
pub extern "C" fn prism_status_name(status: PrismStatus) -> *const c_char {
    let name: &'static CStr = match status {
        PrismStatus::Ok => c"ok",
        PrismStatus::InvalidArgument => c"invalid argument",
        PrismStatus::InvalidHandle => c"invalid handle",
        PrismStatus::Io => c"i/o error",
        PrismStatus::Format => c"bad format",
        PrismStatus::Shape => c"wrong shape",
        PrismStatus::Engine => c"engine error",
        PrismStatus::Panic => c"internal error",
    };
    name.as_ptr()
}

/// Runs an entry point's body: its error, or a panic, becomes a status and the thread's last
/// error message.
pub(crate) fn guard(body: impl FnOnce() -> Result<()>) -> PrismStatus {
    let failure = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => return PrismStatus::Ok,
        Ok(Err(failure)) => failure,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Failure { status: PrismStatus::Panic, message: format!("internal error (please report it): {what}") }
        }
    };
    let line = failure.message.replace(['\n', '\r'], " ").replace('\0', "");
    LAST_ERROR.with(|e| *e.borrow_mut() = CString::new(line).unwrap_or_default());
    failure.status
}

/// A `len`-long array C hands over; null is allowed only when `len` is 0.
///
/// # Safety
/// `ptr` is null or points to `len` initialised values that stay put during the call.
pub(crate) unsafe fn slice<'a, T>(ptr: *const T, len: usize, what: &str) -> Result<&'a [T]> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(invalid(format!("{what} is a null pointer")));
    }
    // SAFETY: not null, and the caller promises `len` values there.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// A `len`-long array C hands over to be written.
///
/// # Safety
/// As [`slice`], and nothing else reads or writes it during the call.
pub(crate) unsafe fn slice_mut<'a, T>(ptr: *mut T, len: usize, what: &str) -> Result<&'a mut [T]> {
    if len == 0 {
        return Ok(&mut []);
    }
    if ptr.is_null() {
        return Err(invalid(format!("{what} is a null pointer")));
    }
    // SAFETY: not null, and the caller promises `len` writable values there.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, len) })
}

/// Where a call writes one answer.
///
/// # Safety
/// `ptr` is null or points to a writable `T`.
pub(crate) unsafe fn out<'a, T>(ptr: *mut T, what: &str) -> Result<&'a mut T> {
    // SAFETY: the caller promises a writable `T` where it is not null.
    unsafe { ptr.as_mut() }.ok_or_else(|| invalid(format!("{what} is a null pointer")))
}

/// A NUL-terminated UTF-8 string C hands over.
///
/// # Safety
/// `ptr` is null or points to a NUL-terminated string.
pub(crate) unsafe fn text<'a>(ptr: *const c_char, what: &str) -> Result<&'a str> {
    if ptr.is_null() {
        return Err(invalid(format!("{what} is a null pointer")));
    }
    // SAFETY: not null, and the caller promises a NUL-terminated string.
    let text = unsafe { CStr::from_ptr(ptr) };
    text.to_str().map_err(|_| invalid(format!("{what} is not UTF-8")))
}

/// `text` as a C string, for strings the library keeps and hands out (a NUL inside is dropped).
pub(crate) fn c_string(text: &str) -> CString {
    CString::new(text.replace('\0', "")).unwrap_or_default()
}

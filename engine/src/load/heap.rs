//! Freed heap memory handed back to the system. Building a large tokenizer (Gemma's 262,144
//! tokens) goes through JSON values of hundreds of MiB that are freed at once; glibc keeps
//! freed memory for reuse (the app raises its trim threshold), so without this they stay
//! resident while the weights are mapped in on top of them.

/// Returns the heap's free pages to the kernel (glibc on Linux; elsewhere nothing).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn release_freed() {
    // SAFETY: malloc_trim only returns free pages of the heap to the kernel; live allocations
    // are untouched, and glibc locks its arenas while it runs.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_freed() {}

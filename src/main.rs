use std::process::ExitCode;

/// Makes glibc return large freed blocks to the system. Each argon2id hash
/// allocates its whole memory cost (19 MiB by default) and frees it; with
/// glibc's adaptive threshold those blocks move into per-thread arenas after
/// the first one and stay resident, so the process grew by ~19 MiB per
/// blocking thread that ever hashed. A fixed threshold keeps them mmap'd:
/// memory goes back after every hash.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before any
    // other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

fn main() -> ExitCode {
    tune_allocator();
    tessera::cli::main()
}

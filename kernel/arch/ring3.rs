//! Ring-3 code the kernel carries in its own image: the benchmark loops
//! (`bench`) that user space runs to make faults and system calls. The
//! assembly and the one step that turns its linker symbols into a slice
//! live here, so `bench` needs no `unsafe`.

// A ring-3 loop writing one byte per page: `touch(start = rdi, pages = rsi)`.
core::arch::global_asm!(
    ".pushsection .rodata.bench_user, \"a\"",
    ".global bench_touch_start",
    "bench_touch_start:",
    "2:",
    "mov byte ptr [rdi], 1",
    "add rdi, 4096",
    "dec rsi",
    "jnz 2b",
    "mov eax, 60",
    "xor edi, edi",
    "syscall",
    // getpid `rsi` times: the bare cost of entering and leaving the kernel.
    ".global bench_syscall_start",
    "bench_syscall_start:",
    "3:",
    "mov eax, 39",
    "syscall",
    "dec rsi",
    "jnz 3b",
    "mov eax, 60",
    "xor edi, edi",
    "syscall",
    // A read of one byte per page: `read(start = rdi, pages = rsi)`.
    ".global bench_read_start",
    "bench_read_start:",
    "4:",
    "mov al, byte ptr [rdi]",
    "add rdi, 4096",
    "dec rsi",
    "jnz 4b",
    "mov eax, 60",
    "xor edi, edi",
    "syscall",
    ".global bench_touch_end",
    "bench_touch_end:",
    ".popsection",
);

unsafe extern "C" {
    static bench_touch_start: u8;
    static bench_syscall_start: u8;
    static bench_read_start: u8;
    static bench_touch_end: u8;
}

/// The benchmark blob's bytes (position independent; its entry points are
/// the [`BenchEntry`] values).
pub fn bench_code() -> &'static [u8] {
    let start = core::ptr::addr_of!(bench_touch_start);
    let end = core::ptr::addr_of!(bench_touch_end);
    // SAFETY: the two symbols delimit the blob above, in kernel rodata,
    // which is mapped read-only for as long as the kernel runs.
    unsafe { core::slice::from_raw_parts(start, end as usize - start as usize) }
}

/// An entry point in [`bench_code`].
#[derive(Clone, Copy, Debug)]
pub enum BenchEntry {
    /// `touch(start = rdi, pages = rsi)`: writes one byte per page.
    Touch,
    /// `getpid` `rsi` times.
    Syscall,
    /// `read(start = rdi, pages = rsi)`: reads one byte per page.
    Read,
}

impl BenchEntry {
    /// Offset of the entry point from the start of [`bench_code`].
    pub fn offset(self) -> u64 {
        let entry = match self {
            BenchEntry::Touch => core::ptr::addr_of!(bench_touch_start),
            BenchEntry::Syscall => core::ptr::addr_of!(bench_syscall_start),
            BenchEntry::Read => core::ptr::addr_of!(bench_read_start),
        };
        entry as u64 - core::ptr::addr_of!(bench_touch_start) as u64
    }
}

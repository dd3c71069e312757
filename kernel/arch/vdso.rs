//! The vDSO's code: x86_64 machine code assembled with the kernel (by
//! rustc's built-in assembler, nothing else needed to build), never run by
//! the kernel. It lives in `.rodata` (not executable in the kernel) and is
//! copied into the vDSO image (`proc::vdso`), which user processes map
//! read + execute.
//!
//! Position-independent: the only data it reads is the vDSO data page
//! (`[vvar]`), mapped one page below the image, addressed relative to the
//! code itself (`rip + text_start - TEXT_OFFSET - 4096`). The page holds
//! (all u64): 0 a sequence count (even: stable), 8 the TSC's kHz, 16 the
//! TSC at boot, 24 the Unix time at boot in ns, 32 the tick in ns.
//!
//! Each function follows the SysV ABI and returns what the system call
//! returns (0 or -errno); clocks it does not handle go to the system call.
//! The arithmetic is the kernel's `time::uptime_ns` exactly: (TSC - boot
//! TSC, or 0 if before) × 10⁶ / kHz with a 128-bit intermediate (`mul`
//! then `div`), so the vDSO and the system call read the same clock.

use usercore::vdso::TEXT_OFFSET;

/// Offsets in the data page.
pub const VVAR_SEQ: usize = 0;
pub const VVAR_TSC_KHZ: usize = 8;
pub const VVAR_BOOT_TSC: usize = 16;
pub const VVAR_BOOT_WALL_NS: usize = 24;
pub const VVAR_TICK_NS: usize = 32;

core::arch::global_asm!(
    ".pushsection .rodata.ferrite_vdso, \"a\"",
    ".balign 16",
    ".global ferrite_vdso_text_start",
    "ferrite_vdso_text_start:",
    // uptime: rax = ns since boot, r8 = the data page; clobbers rcx, rdx.
    ".Lvdso_uptime:",
    "    lea r8, [rip + ferrite_vdso_text_start - {text_off} - 4096]",
    "    rdtsc",
    "    shl rdx, 32",
    "    or rax, rdx",
    "    sub rax, [r8 + {boot_tsc}]",
    "    jae 2f",
    "    xor eax, eax",
    "2:  mov rcx, 1000000",
    "    mul rcx",
    "    div qword ptr [r8 + {khz}]",
    "    ret",
    // rax = rax rounded down to the tick (the coarse clocks).
    ".Lvdso_to_tick:",
    "    mov rcx, rax",
    "    xor edx, edx",
    "    div qword ptr [r8 + {tick}]",
    "    sub rcx, rdx",
    "    mov rax, rcx",
    "    ret",
    // int clock_gettime(clockid_t edi, struct timespec *rsi)
    ".balign 16",
    ".global ferrite_vdso_clock_gettime",
    "ferrite_vdso_clock_gettime:",
    "    cmp edi, 1",  // MONOTONIC
    "    je .Lcgt_mono",
    "    cmp edi, 4",  // MONOTONIC_RAW
    "    je .Lcgt_mono",
    "    cmp edi, 7",  // BOOTTIME
    "    je .Lcgt_mono",
    "    test edi, edi", // REALTIME
    "    je .Lcgt_real",
    "    cmp edi, 6",  // MONOTONIC_COARSE
    "    je .Lcgt_mono_coarse",
    "    cmp edi, 5",  // REALTIME_COARSE
    "    je .Lcgt_real_coarse",
    "    mov eax, 228", // anything else: the system call
    "    syscall",
    "    ret",
    ".Lcgt_mono_coarse:",
    "    call .Lvdso_uptime",
    "    call .Lvdso_to_tick",
    "    jmp .Lcgt_store",
    ".Lcgt_real_coarse:",
    "    call .Lvdso_uptime",
    "    call .Lvdso_to_tick",
    "    add rax, [r8 + {wall}]",
    "    jmp .Lcgt_store",
    ".Lcgt_real:",
    "    call .Lvdso_uptime",
    "    add rax, [r8 + {wall}]",
    "    jmp .Lcgt_store",
    ".Lcgt_mono:",
    "    call .Lvdso_uptime",
    ".Lcgt_store:",
    "    xor edx, edx",
    "    mov rcx, 1000000000",
    "    div rcx",
    "    mov [rsi], rax",
    "    mov [rsi + 8], rdx",
    "    xor eax, eax",
    "    ret",
    // int gettimeofday(struct timeval *rdi, struct timezone *rsi)
    ".balign 16",
    ".global ferrite_vdso_gettimeofday",
    "ferrite_vdso_gettimeofday:",
    "    test rsi, rsi",
    "    jz 3f",
    "    mov qword ptr [rsi], 0", // UTC, no daylight saving
    "3:  test rdi, rdi",
    "    jz 4f",
    "    call .Lvdso_uptime",
    "    add rax, [r8 + {wall}]",
    "    xor edx, edx",
    "    mov rcx, 1000000000",
    "    div rcx",
    "    mov [rdi], rax",
    "    mov rax, rdx",
    "    xor edx, edx",
    "    mov rcx, 1000",
    "    div rcx",
    "    mov [rdi + 8], rax",
    "4:  xor eax, eax",
    "    ret",
    // time_t time(time_t *rdi)
    ".balign 16",
    ".global ferrite_vdso_time",
    "ferrite_vdso_time:",
    "    call .Lvdso_uptime",
    "    add rax, [r8 + {wall}]",
    "    xor edx, edx",
    "    mov rcx, 1000000000",
    "    div rcx",
    "    test rdi, rdi",
    "    jz 5f",
    "    mov [rdi], rax",
    "5:  ret",
    // int getcpu(unsigned *rdi, unsigned *rsi, void *cache): one CPU, node 0.
    ".balign 16",
    ".global ferrite_vdso_getcpu",
    "ferrite_vdso_getcpu:",
    "    test rdi, rdi",
    "    jz 6f",
    "    mov dword ptr [rdi], 0",
    "6:  test rsi, rsi",
    "    jz 7f",
    "    mov dword ptr [rsi], 0",
    "7:  xor eax, eax",
    "    ret",
    ".global ferrite_vdso_text_end",
    "ferrite_vdso_text_end:",
    ".popsection",
    text_off = const TEXT_OFFSET,
    boot_tsc = const VVAR_BOOT_TSC,
    khz = const VVAR_TSC_KHZ,
    tick = const VVAR_TICK_NS,
    wall = const VVAR_BOOT_WALL_NS,
);

extern "C" {
    static ferrite_vdso_text_start: u8;
    static ferrite_vdso_text_end: u8;
    static ferrite_vdso_clock_gettime: u8;
    static ferrite_vdso_gettimeofday: u8;
    static ferrite_vdso_time: u8;
    static ferrite_vdso_getcpu: u8;
}

/// The code's bytes and the exported functions' offsets in them (Linux's
/// names).
pub fn text() -> (&'static [u8], [(&'static str, usize); 4]) {
    let start = &raw const ferrite_vdso_text_start as usize;
    let end = &raw const ferrite_vdso_text_end as usize;
    // SAFETY: the two labels delimit the bytes assembled above, in the
    // kernel's read-only data, alive and unchanged for the kernel's life.
    let bytes = unsafe { core::slice::from_raw_parts(start as *const u8, end - start) };
    let off = |p: *const u8| p as usize - start;
    (
        bytes,
        [
            (
                "__vdso_clock_gettime",
                off(&raw const ferrite_vdso_clock_gettime),
            ),
            (
                "__vdso_gettimeofday",
                off(&raw const ferrite_vdso_gettimeofday),
            ),
            ("__vdso_time", off(&raw const ferrite_vdso_time)),
            ("__vdso_getcpu", off(&raw const ferrite_vdso_getcpu)),
        ],
    )
}

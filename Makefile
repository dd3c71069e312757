# Ferrite: `make run` boots it in QEMU, `make test` runs every test.
# Each target installs what it needs first (tools/setup).

HOST      := x86_64-unknown-linux-gnu
BOOT_TOOL := boot/target/$(HOST)/release/ferrite-boot
IMAGES    := target/images
MEM       ?= 256M

# make run UEFI=1 boots through OVMF instead of BIOS; MEM=4G sets the RAM;
# EXTRA=dir adds dir's files to the ramdisk's /bin; INIT=prog runs prog first;
# RC=file runs file's lines as shell commands at boot (end with poweroff);
# SWAP=512M attaches a blank virtio-blk disk of that size (the swap disk);
# SMP=4 gives the machine 4 CPUs.
# USB=stick,kbd boots from a USB stick on xHCI and adds a USB keyboard.
# FAIL="failslab=every:7 fail_page_alloc=random:50,seed:3" injects allocation
# failures from boot (packed as /etc/cmdline; see `help failinject`).
# What goes into the ramdisk: the same for run, image and usb.
PACK_ENV := $(if $(FAIL),FERRITE_CMDLINE='$(FAIL)') \
	$(if $(EXTRA),FERRITE_EXTRA=$(abspath $(EXTRA))) $(if $(INIT),FERRITE_INIT=$(INIT)) \
	$(if $(RC),FERRITE_RC=$(abspath $(RC)))
RUN_ENV := FERRITE_MEMORY=$(MEM) $(if $(filter 1,$(UEFI)),FERRITE_UEFI=1) \
	$(if $(SWAP),FERRITE_SWAP=$(SWAP)) $(if $(SMP),FERRITE_SMP=$(SMP)) $(if $(USB),FERRITE_USB=$(USB)) $(PACK_ENV)

.PHONY: all setup user run test test-host test-kernel image usb gdb gdb-attach bench fuzz lint fmt clean

all: image

setup:
	@tools/setup musl-tools

# The user programs packed into the ramdisk (musl, static).
user:
	$(MAKE) -C user

run: setup user
	$(RUN_ENV) cargo run

test: setup user test-host test-kernel

# Pure logic on the host: allocators (mmcore) and the boot tool.
test-host:
	cargo test -p mmcore -p vmcore -p usercore -p reclaimcore -p swapcore --target $(HOST)
	cargo test -p mmcore --features slab-debug --target $(HOST)
	cd boot && cargo test --release --quiet
	user/run-host-tests.sh

# Every file in tests/ is a kernel booted in QEMU (see tests/machines.txt);
# then the host end of the console: QEMU's serial output byte-exact.
test-kernel:
	rm -f target/kernel-test-failures.txt
	FERRITE_FAILURE_LOG=$(CURDIR)/target/kernel-test-failures.txt cargo test --no-fail-fast || \
	  { echo "--- what the failed kernel tests printed (target/kernel-test-failures.txt) ---"; \
	    cat target/kernel-test-failures.txt 2>/dev/null; exit 1; }
	tools/check-console-bytes

image: setup user
	cargo build --release
	$(PACK_ENV) $(BOOT_TOOL) image --kernel target/x86_64-unknown-none/release/ferrite --out-dir $(IMAGES)

# make image / make usb take EXTRA, INIT, RC and FAIL like make run.
# make usb DEV=/dev/sdX [IMAGE=uefi]  (bios works on both on most PCs with CSM)
usb: image
	@test -n "$(DEV)" || { echo "usage: make usb DEV=/dev/sdX [IMAGE=bios|uefi]"; exit 2; }
	tools/write-usb $(IMAGES)/ferrite-$(or $(IMAGE),uefi).img $(DEV)

# QEMU waits for GDB on :1234; attach from another terminal with `make gdb-attach`.
gdb: setup user
	$(RUN_ENV) FERRITE_GDB=1 cargo run

gdb-attach:
	gdb target/x86_64-unknown-none/debug/ferrite \
	  -ex 'set architecture i386:x86-64' -ex 'target remote localhost:1234'

# Host allocator benchmarks (criterion, against peer crates), compressed swap
# (Zram) against raw LZ4 on the host, the page-replacement quality table
# (reclaimcore: every policy's misses vs OPT), the in-kernel
# fault-path benchmarks and swap throughput against the disk's raw speed and
# raw LZ4 in QEMU (release builds), then user/mmbench on Ferrite
# and on Linux 6.1 in the same QEMU (tools/bench-linux; BENCH_RUNS=3 for
# medians of three interleaved runs; skipped without the Linux runner),
# user/thrash beyond RAM on compressed swap on both (tools/bench-swap), and
# console throughput, user/catbench's 126 KB of text, on both
# (tools/bench-console), and page-fault scalability, user/scale at 1, 2 and
# 4 CPUs with the TLB shootdown cost, on both (tools/bench-scale).
BENCH_RUNS ?= 1
bench: setup
	cargo bench -p mmcore --target $(HOST)
	cargo run --release -q -p swapcore --example zram_speed --target $(HOST)
	cargo run --release -p reclaimcore --example quality --target $(HOST)
	cargo test --release --test bench
	cargo test --release --test bench_swap
	tools/bench-linux --runs $(BENCH_RUNS)
	tools/bench-swap --runs $(BENCH_RUNS)
	tools/bench-console --runs $(BENCH_RUNS)
	tools/bench-scale --runs $(BENCH_RUNS)

# A long system-call fuzz campaign in the kernel (tests/fuzz.rs, release
# build, on every machine tests/machines.txt lists for `fuzz`): two passes of
# FUZZ_CALLS calls, the first with FUZZ_SEED. FUZZ_TRACE=1 prints every call
# before it is made (for a kernel that panics); FUZZ_ARGS adds fuzz options
# (e.g. -k: keep going after an invariant violation). The timeout per
# machine defaults to 300 s plus 1 s per 250 calls.
FUZZ_CALLS   ?= 1000000
FUZZ_SEED    ?= 1
FUZZ_TIMEOUT ?= $(shell echo $$(( 300 + $(FUZZ_CALLS) / 250 )))
fuzz: setup user
	FERRITE_FUZZ_CALLS=$(FUZZ_CALLS) FERRITE_FUZZ_SEED=$(FUZZ_SEED) \
	  FERRITE_FUZZ_TRACE=$(FUZZ_TRACE) FERRITE_FUZZ_ARGS="$(FUZZ_ARGS)" \
	  FERRITE_TEST_TIMEOUT=$(FUZZ_TIMEOUT) cargo test --release --test fuzz

lint: setup
	cargo fmt --all --check
	cd boot && cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	cargo clippy -p mmcore -p vmcore -p usercore -p reclaimcore -p swapcore --target $(HOST) --all-targets -- -D warnings
	cd boot && cargo clippy --release -- -D warnings

fmt:
	cargo fmt --all
	cd boot && cargo fmt

clean:
	cargo clean
	cd boot && cargo clean
	$(MAKE) -C user clean

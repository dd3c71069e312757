//! PCI configuration space through the legacy PC mechanism ("configuration
//! mechanism #1"): a dword written to port 0xcf8 selects bus, device,
//! function and register; port 0xcfc then reads or writes that register.
//! Every PC chipset and QEMU's `q35` and `pc` machines decode it, so no
//! ACPI table (MCFG) is needed to find the devices.
//!
//! [`ConfigPorts`] is `virtio-drivers`' [`ConfigurationAccess`] over these
//! two ports, so the crate's [`PciRoot`](virtio_drivers::transport::pci::bus::PciRoot)
//! can enumerate buses, size BARs and read capabilities.

use virtio_drivers::transport::pci::bus::{ConfigurationAccess, DeviceFunction};
use x86_64::instructions::port::Port;

use super::sync::IrqOff;

const CONFIG_ADDRESS: u16 = 0xcf8;
const CONFIG_DATA: u16 = 0xcfc;

/// Access to PCI configuration space through ports 0xcf8/0xcfc.
///
/// Only this module makes one ([`config_ports`]). What a configuration
/// write can do is the reason this is in `arch`: moving a BAR or enabling
/// bus mastering changes which physical addresses a device answers or
/// writes. The only writer in the kernel is `virtio-drivers`' `PciRoot`,
/// which writes BARs only to size them (decoding off, the original value
/// restored) and sets the command register of the device the caller then
/// drives; the firmware's BAR assignment is never changed.
#[derive(Debug)]
pub struct ConfigPorts(());

/// The configuration-space accessor (one per caller; accesses are
/// serialised with interrupts off, see [`ConfigPorts::access`]).
pub fn config_ports() -> ConfigPorts {
    ConfigPorts(())
}

/// The CONFIG_ADDRESS value for a register: enable bit, bus, device,
/// function, and the dword-aligned register offset.
fn address(df: DeviceFunction, register: u8) -> u32 {
    0x8000_0000
        | u32::from(df.bus) << 16
        | u32::from(df.device & 0x1f) << 11
        | u32::from(df.function & 0x7) << 8
        | u32::from(register & 0xfc)
}

impl ConfigPorts {
    /// Selects `register` of `df`, then runs `f` on the data port. The
    /// address/data pair is one operation: interrupts stay off in between,
    /// so nothing on this CPU (the only one) can select another register.
    fn access<R>(
        &self,
        df: DeviceFunction,
        register: u8,
        f: impl FnOnce(&mut Port<u32>) -> R,
    ) -> R {
        let _irq = IrqOff::new();
        let mut data = Port::<u32>::new(CONFIG_DATA);
        // SAFETY: writing CONFIG_ADDRESS only selects a register; it
        // touches no memory and no device state.
        unsafe { Port::<u32>::new(CONFIG_ADDRESS).write(address(df, register)) };
        f(&mut data)
    }
}

impl ConfigurationAccess for ConfigPorts {
    fn read_word(&self, df: DeviceFunction, register: u8) -> u32 {
        // SAFETY: reading a configuration register has no side effect on
        // memory (PCI defines configuration reads as side-effect free; an
        // absent device reads as all ones).
        self.access(df, register, |data| unsafe { data.read() })
    }

    fn write_word(&mut self, df: DeviceFunction, register: u8, value: u32) {
        // SAFETY: see `ConfigPorts`: the only writes are BAR sizing (with
        // decoding disabled, then restored) and the command register of the
        // device being driven, whose DMA goes to memory its driver owns.
        self.access(df, register, |data| unsafe { data.write(value) })
    }

    unsafe fn unsafe_clone(&self) -> Self {
        ConfigPorts(())
    }
}

/// Calls `f` for every function on bus 0 and on every bus behind a
/// PCI-to-PCI bridge reachable from it (each bus once). Allocates nothing.
pub fn for_each_function(
    root: &virtio_drivers::transport::pci::bus::PciRoot<ConfigPorts>,
    mut f: impl FnMut(DeviceFunction, &virtio_drivers::transport::pci::bus::DeviceFunctionInfo),
) {
    use virtio_drivers::transport::pci::bus::HeaderType;
    // Buses still to scan (a stack), and the buses ever queued.
    let mut buses = [0u8; 256];
    let mut pending = 1;
    let mut seen = [false; 256];
    seen[0] = true;
    let access = config_ports();
    while pending > 0 {
        pending -= 1;
        for (df, info) in root.enumerate_bus(buses[pending]) {
            f(df, &info);
            if info.header_type == HeaderType::PciPciBridge {
                // Type 1 header, register 0x18: secondary bus in byte 1.
                let secondary = (access.read_word(df, 0x18) >> 8) as u8;
                if !seen[usize::from(secondary)] {
                    seen[usize::from(secondary)] = true;
                    buses[pending] = secondary;
                    pending += 1;
                }
            }
        }
    }
}

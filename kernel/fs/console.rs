//! The console as a file: what descriptors 0, 1 and 2 start as, and
//! `/dev/console` and `/dev/tty`. Reads take keyboard/serial input
//! (blocking for at least a byte); writes go to
//! [`crate::proc::console::write_bytes`].

use alloc::sync::Arc;

use super::file::{File, FileOps, FileType, Stat};
use crate::arch::uapi::Winsize;
use crate::mm::uaccess::{copy_from_user, copy_to_user, write_user};
use crate::proc::syscall::Errno;

pub struct Console;

/// The one console (shared by every description of it).
pub fn ops() -> Arc<dyn FileOps> {
    static CONSOLE: spin::Once<Arc<Console>> = spin::Once::new();
    // Made once at first use (the boot's first process): never fails later.
    CONSOLE.call_once(|| Arc::new(Console)).clone()
}

const TIOCGWINSZ: u64 = 0x5413;
const TCGETS: u64 = 0x5401;

/// `st_rdev` of `/dev/console` (5, 1).
const CONSOLE_RDEV: u64 = (5 << 8) | 1;

impl FileOps for Console {
    fn read(&self, file: &File, buf: u64, len: usize) -> Result<usize, Errno> {
        if len == 0 {
            return Ok(0);
        }
        // Check the buffer before blocking for input.
        if !crate::mm::uaccess::access_ok(buf, len, vmcore::Prot::WRITE) {
            return Err(Errno::EFAULT);
        }
        // A read returns what is there (at least a byte): a small buffer on
        // the stack is enough, nothing to allocate.
        let mut kbuf = [0u8; 1024];
        let want = len.min(kbuf.len());
        let n = if file.nonblocking() {
            match crate::proc::console::try_read(&mut kbuf[..want]) {
                0 => return Err(Errno::EAGAIN),
                n => n,
            }
        } else {
            match crate::proc::console::read_blocking(&mut kbuf[..want]) {
                // A signal came first.
                0 => return Err(Errno::ERESTARTSYS),
                n => n,
            }
        };
        copy_to_user(buf, &kbuf[..n])?;
        Ok(n)
    }

    fn write(&self, _file: &File, buf: u64, len: usize) -> Result<usize, Errno> {
        let mut chunk = [0u8; 4096];
        let mut done = 0;
        while done < len {
            let n = (len - done).min(chunk.len());
            if copy_from_user(&mut chunk[..n], buf + done as u64).is_err() {
                return if done == 0 {
                    Err(Errno::EFAULT)
                } else {
                    Ok(done)
                };
            }
            crate::proc::console::write_bytes(&chunk[..n]);
            done += n;
        }
        Ok(done)
    }

    fn poll(&self, _file: &File) -> super::file::PollEvents {
        let mut events = super::file::PollEvents::OUT;
        if crate::proc::console::input_pending() {
            events = events | super::file::PollEvents::IN;
        }
        events
    }

    fn stat(&self, _file: &File) -> Result<Stat, Errno> {
        Ok(super::vfs::stat_for(
            super::vfs::DEV_DEVFS,
            3,
            FileType::CharDevice,
            0o620,
            0,
            CONSOLE_RDEV,
        ))
    }

    fn ioctl(&self, _file: &File, request: u64, arg: u64) -> Result<u64, Errno> {
        match request {
            TIOCGWINSZ => {
                // 25 rows, 80 columns: the console is a terminal.
                let size = Winsize {
                    ws_row: 25,
                    ws_col: 80,
                    ws_xpixel: 0,
                    ws_ypixel: 0,
                };
                write_user(arg, &size)?;
                Ok(0)
            }
            TCGETS => {
                // A terminal in its default (cooked) mode. The kernel's
                // `struct termios` is 36 bytes (four flag words, c_line,
                // 19 control characters): glibc hands exactly that much
                // of its stack (its own 60-byte termios is converted), so
                // writing more smashes its stack.
                let mut termios = [0u8; 36];
                // c_iflag ICRNL, c_oflag OPOST|ONLCR, c_cflag B38400|CS8|CREAD,
                // c_lflag ISIG|ICANON|ECHO|ECHOE|ECHOK|ECHOCTL|ECHOKE|IEXTEN.
                termios[0..4].copy_from_slice(&0o400u32.to_ne_bytes());
                termios[4..8].copy_from_slice(&0o5u32.to_ne_bytes());
                termios[8..12].copy_from_slice(&0o277u32.to_ne_bytes());
                termios[12..16].copy_from_slice(&0o105073u32.to_ne_bytes());
                copy_to_user(arg, &termios)?;
                Ok(0)
            }
            _ => Err(Errno::ENOTTY),
        }
    }
}

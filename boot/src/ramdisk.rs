//! Packing the ramdisk: a cpio (newc) archive of the user programs
//! (`user/build` -> `/bin`), the root file tree (`user/rootfs` -> `/`) and,
//! if `FERRITE_EXTRA` names a directory, its files (-> `/bin`, so the shell
//! runs them by name). `FERRITE_INIT` adds `/etc/init` naming the first
//! program to start; `FERRITE_RC=file` packs that file as `/etc/rc`, the
//! script the shell runs at boot. `FERRITE_CMDLINE="failslab=every:7 ..."`
//! packs its text as `/etc/cmdline`, the kernel's boot command line (read
//! before the first user process starts).

use std::path::{Path, PathBuf};

use usercore::cpio::Builder;

fn repo_root() -> PathBuf {
    std::env::var("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from("."))
}

pub fn pack_default(out: &Path) -> Result<PathBuf, String> {
    let root = repo_root();
    let mut builder = Builder::new();
    let rootfs = root.join("user/rootfs");
    if rootfs.is_dir() {
        builder
            .add_host_tree(&rootfs, "/")
            .map_err(|e| format!("ramdisk: {}: {e}", rootfs.display()))?;
    }
    let mut bin_dirs = vec![root.join("user/build")];
    if let Ok(extra) = std::env::var("FERRITE_EXTRA") {
        let extra = PathBuf::from(extra);
        if !extra.is_dir() {
            return Err(format!("EXTRA={} is not a directory", extra.display()));
        }
        bin_dirs.push(extra);
    }
    let mut have_bin = rootfs.join("bin").is_dir();
    for dir in bin_dirs.iter().filter(|d| d.is_dir()) {
        for entry in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
            let entry = entry.map_err(|e| e.to_string())?;
            let path = entry.path();
            if !path.is_file() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let data = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            if !have_bin {
                builder.add_dir("bin").map_err(|e| e.to_string())?;
                have_bin = true;
            }
            builder
                .add_file(&format!("bin/{name}"), 0o755, &data)
                .map_err(|e| format!("ramdisk: {name}: {e}"))?;
        }
    }
    if let Ok(rc) = std::env::var("FERRITE_RC") {
        let script = std::fs::read(&rc).map_err(|e| format!("RC={rc}: {e}"))?;
        builder
            .add_file("etc/rc", 0o644, &script)
            .map_err(|e| e.to_string())?;
    }
    if let Ok(cmdline) = std::env::var("FERRITE_CMDLINE") {
        builder
            .add_file("etc/cmdline", 0o644, cmdline_file(&cmdline).as_bytes())
            .map_err(|e| e.to_string())?;
    }
    if let Ok(init) = std::env::var("FERRITE_INIT") {
        builder
            .add_file("etc/init", 0o644, init.trim().as_bytes())
            .map_err(|e| e.to_string())?;
    }
    std::fs::write(out, builder.finish()).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(out.to_owned())
}

/// The contents of `/etc/cmdline` for `FERRITE_CMDLINE=text`: the text on
/// one line.
fn cmdline_file(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    format!("{}\n", words.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmdline_is_one_line() {
        assert_eq!(
            cmdline_file(" failslab=every:7\n  fail_page_alloc=random:50,seed:3 "),
            "failslab=every:7 fail_page_alloc=random:50,seed:3\n"
        );
        assert_eq!(cmdline_file(""), "\n");
    }
}

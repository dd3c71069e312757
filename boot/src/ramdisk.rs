//! Packing the ramdisk: a cpio (newc) archive of the user programs
//! (`user/build` -> `/bin`), the root file tree (`user/rootfs` -> `/`) and,
//! if `FERRITE_EXTRA` names a directory, its files (-> `/bin`, so the shell
//! runs them by name). `FERRITE_INIT` adds `/etc/init` naming the first
//! program to start; `FERRITE_RC=file` packs that file as `/etc/rc`, the
//! script the shell runs at boot. `FERRITE_CMDLINE="failslab=every:7 ..."`
//! packs its text as `/etc/cmdline`, the kernel's boot command line (read
//! before the first user process starts). A test's line in
//! `tests/machines.txt` may add single files to `/bin` (`bin=PATH`, e.g. a
//! test dependency `make setup` fetched), so only that test's ramdisk
//! carries them.

use std::path::{Path, PathBuf};

use usercore::cpio::Builder;

fn repo_root() -> PathBuf {
    std::env::var("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from("."))
}

/// What goes into the ramdisk besides `user/build` and `user/rootfs`:
/// `make run`, `make image` and `make usb` pass it in the environment
/// (`FERRITE_EXTRA`, `FERRITE_INIT`, `FERRITE_RC`, `FERRITE_CMDLINE`); a
/// test's line in `tests/machines.txt` may add files to `/bin` (`bin=`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pack {
    /// A directory whose files go to `/bin`.
    pub extra: Option<PathBuf>,
    /// The first program to run (`/etc/init`).
    pub init: Option<String>,
    /// A file packed as `/etc/rc`.
    pub rc: Option<PathBuf>,
    /// The kernel's boot options (`/etc/cmdline`).
    pub cmdline: Option<String>,
    /// More files for `/bin`.
    pub bins: Vec<PathBuf>,
}

impl Pack {
    /// The options from the environment.
    pub fn from_env() -> Pack {
        Pack::from_vars(|name| std::env::var(name).ok())
    }

    /// The options from variables looked up by `var` (empty ones unset).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Pack {
        let var = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        Pack {
            extra: var("FERRITE_EXTRA").map(PathBuf::from),
            init: var("FERRITE_INIT"),
            rc: var("FERRITE_RC").map(PathBuf::from),
            cmdline: var("FERRITE_CMDLINE"),
            bins: Vec::new(),
        }
    }
}

/// Packs the ramdisk of the repository the tool runs for (see
/// [`repo_root`]) with `opts` into `out`.
pub fn pack_default(out: &Path, opts: &Pack) -> Result<PathBuf, String> {
    pack(&repo_root(), opts, out)
}

/// Packs `root`'s `user/rootfs` and `user/build` with `opts` into `out`.
pub fn pack(root: &Path, opts: &Pack, out: &Path) -> Result<PathBuf, String> {
    let mut builder = Builder::new();
    let rootfs = root.join("user/rootfs");
    if rootfs.is_dir() {
        builder
            .add_host_tree(&rootfs, "/")
            .map_err(|e| format!("ramdisk: {}: {e}", rootfs.display()))?;
    }
    let mut bin_files = Vec::new();
    let mut bin_dirs = vec![root.join("user/build")];
    if let Some(extra) = &opts.extra {
        if !extra.is_dir() {
            return Err(format!("EXTRA={} is not a directory", extra.display()));
        }
        bin_dirs.push(extra.clone());
    }
    for dir in bin_dirs.iter().filter(|d| d.is_dir()) {
        for entry in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
            let path = entry.map_err(|e| e.to_string())?.path();
            if path.is_file() {
                bin_files.push(path);
            }
        }
    }
    for bin in &opts.bins {
        let path = root.join(bin);
        if !path.is_file() {
            return Err(format!(
                "ramdisk: {} is missing (a test dependency: run `make setup`)",
                path.display()
            ));
        }
        bin_files.push(path);
    }
    let mut have_bin = rootfs.join("bin").is_dir();
    for path in &bin_files {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if !have_bin {
            builder.add_dir("bin").map_err(|e| e.to_string())?;
            have_bin = true;
        }
        builder
            .add_file(&format!("bin/{name}"), 0o755, &data)
            .map_err(|e| format!("ramdisk: {name}: {e}"))?;
    }
    if let Some(rc) = &opts.rc {
        let script = std::fs::read(rc).map_err(|e| format!("RC={}: {e}", rc.display()))?;
        builder
            .add_file("etc/rc", 0o644, &script)
            .map_err(|e| e.to_string())?;
    }
    if let Some(cmdline) = &opts.cmdline {
        builder
            .add_file("etc/cmdline", 0o644, cmdline_file(cmdline).as_bytes())
            .map_err(|e| e.to_string())?;
    }
    if let Some(init) = &opts.init {
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
    fn pack_options_come_from_the_environment_names() {
        let vars = |name: &str| match name {
            "FERRITE_EXTRA" => Some("/tmp/x".to_string()),
            "FERRITE_INIT" => Some("sh".to_string()),
            "FERRITE_RC" => Some(" ".to_string()),
            _ => None,
        };
        let pack = Pack::from_vars(vars);
        assert_eq!(pack.extra.as_deref(), Some(Path::new("/tmp/x")));
        assert_eq!(pack.init.as_deref(), Some("sh"));
        assert_eq!(pack.rc, None, "an empty variable is unset");
        assert_eq!(pack.cmdline, None);
    }

    #[test]
    fn cmdline_is_one_line() {
        assert_eq!(
            cmdline_file(" failslab=every:7\n  fail_page_alloc=random:50,seed:3 "),
            "failslab=every:7 fail_page_alloc=random:50,seed:3\n"
        );
        assert_eq!(cmdline_file(""), "\n");
    }
}

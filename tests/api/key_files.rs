//! Key files as orchestrators mount them: `jwt.key_file_permissions`, and
//! the read-only mount a Kubernetes secret volume or a Docker secret is.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::helpers::*;

const SECRET: &str = "a-mounted-hmac-secret-0123456789abcdef0123456789abcdef0123";

/// A tmpfs at `dir`, unmounted when dropped.
struct Mount(std::path::PathBuf);

impl Mount {
    /// Mounts a tmpfs (this needs root, as a kubelet has); `None` where
    /// that is not allowed, unless CI asks for every test to run.
    fn tmpfs(dir: &Path) -> Option<Self> {
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            assert!(
                std::env::var("TESSERA_REQUIRE_TOOLS").as_deref() != Ok("1"),
                "mounting a tmpfs needs root (TESSERA_REQUIRE_TOOLS=1)"
            );
            eprintln!("skipped: cannot mount a tmpfs here (needs root)");
            return None;
        }
        Some(Self(dir.to_owned()))
    }

    fn read_only(&self) {
        let ok = Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(ok.success());
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn keys_from(path: &Path, extra: &[(&str, &str)]) -> Result<(), String> {
    let mut env = base_env("sqlite::memory:");
    env.remove("TESSERA__JWT__SIGNING_KEY");
    env.insert(
        "TESSERA__JWT__SIGNING_KEY_FILE".into(),
        path.display().to_string(),
    );
    for (k, v) in extra {
        env.insert((*k).into(), (*v).into());
    }
    let settings = tessera::config::Settings::load_from(None, env).map_err(|e| e.to_string())?;
    tessera::tokens::KeyRing::from_settings(&settings)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[test]
fn a_readable_key_file_is_refused_unless_mounted_read_only_or_allowed() {
    let dir = tempfile::tempdir().unwrap();
    // On an ordinary, writable file system: 0644 is refused, with the ways
    // out named; "warn" lets it through; 0600 always passes.
    let plain = dir.path().join("plain.key");
    std::fs::write(&plain, SECRET).unwrap();
    std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = keys_from(&plain, &[]).unwrap_err();
    assert!(err.contains("chmod 600"), "{err}");
    assert!(err.contains("read-only"), "{err}");
    assert!(err.contains("key_file_permissions"), "{err}");
    keys_from(&plain, &[("TESSERA__JWT__KEY_FILE_PERMISSIONS", "warn")]).unwrap();
    let err = keys_from(&plain, &[("TESSERA__JWT__KEY_FILE_PERMISSIONS", "lax")]).unwrap_err();
    assert!(err.contains("strict, warn"), "{err}");
    std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o600)).unwrap();
    keys_from(&plain, &[]).unwrap();

    // A secret volume: read-only, files 0644 (Kubernetes' defaultMode) or
    // 0444 (Docker's), owned by root.
    let volume = dir.path().join("secrets");
    std::fs::create_dir(&volume).unwrap();
    let Some(mount) = Mount::tmpfs(&volume) else {
        return;
    };
    for (name, mode) in [
        ("k8s.key", 0o644),
        ("docker.key", 0o444),
        ("loose.key", 0o666),
    ] {
        let path = volume.join(name);
        std::fs::write(&path, SECRET).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    // Still writable: the mode decides.
    assert!(keys_from(&volume.join("k8s.key"), &[]).is_err());
    mount.read_only();
    keys_from(&volume.join("k8s.key"), &[]).unwrap();
    keys_from(&volume.join("docker.key"), &[]).unwrap();
    // Writable by others is refused even there.
    let err = keys_from(&volume.join("loose.key"), &[]).unwrap_err();
    assert!(err.contains("mode 0666"), "{err}");
}

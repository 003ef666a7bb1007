//! What the file system can refuse: a directory in the way, a missing directory, another
//! process's lock, a read-only file system, a full disk. Each is an error that names the file,
//! never a panic.
//!
//! The read-only and full-disk tests need a small file system of their own: the test runs
//! again in a private mount namespace (`unshare --mount`), mounts a tmpfs there, and the host
//! sees none of it. Without the privilege they print `SKIP:` and pass, unless
//! `WSBEAT_REQUIRE_PEERS=1` (CI), where they fail.

use std::error::Error as _;
use std::fs;
use std::io::ErrorKind;

use super::*;
use crate::journal::JournalError;

/// Set in the child that runs inside the private mount namespace.
const MOUNT_CHILD: &str = "WSBEAT_JOURNAL_MOUNT_CHILD";

#[test]
fn a_directory_where_the_file_should_be_is_an_error_not_a_panic() {
    let dir = TempDir::new("isdir");
    fs::create_dir(dir.journal()).unwrap();
    let err = try_open(&dir.journal(), SyncPolicy::Always, 1 << 20).unwrap_err();
    assert!(
        matches!(&err, JournalError::NotAFile { path } if *path == dir.journal()),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "outbox journal `{}` is not a regular file",
            dir.journal().display()
        )
    );
    assert!(dir.journal().is_dir(), "left as it was");
}

#[test]
fn a_missing_directory_is_an_error_that_names_the_file() {
    let dir = TempDir::new("nodir");
    let path = dir.path().join("missing").join("outbox.wsj");
    let err = try_open(&path, SyncPolicy::Always, 1 << 20).unwrap_err();
    assert_eq!(err.io_kind(), Some(ErrorKind::NotFound), "{err}");
    assert!(
        err.to_string().starts_with("cannot open lock file `"),
        "{err}"
    );
    assert!(err.to_string().contains("outbox.wsj.lock"), "{err}");
    assert!(err.source().is_some(), "the OS error is kept as the source");
}

#[test]
fn a_second_open_of_a_locked_journal_is_refused_naming_the_lock() {
    let dir = TempDir::new("locked");
    let (mut first, _) = open(&dir.journal(), SyncPolicy::Always);
    first.append(&msg(1), Instant::now()).unwrap();
    let err =
        Journal::open(&dir.journal(), SyncPolicy::Always, 1 << 20, Instant::now()).unwrap_err();
    let lock = dir.path().join("outbox.wsj.lock");
    assert!(
        matches!(&err, JournalError::Locked { lock: l } if *l == lock),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "outbox journal is in use by another process (lock `{}` is held)",
            lock.display()
        )
    );
    // Another process is refused too (flock(1) from util-linux, where installed).
    match std::process::Command::new("flock")
        .args(["-n", "-E", "75"])
        .arg(&lock)
        .arg("true")
        .status()
    {
        Ok(status) => assert_eq!(status.code(), Some(75), "flock(1) got the lock"),
        Err(e) => println!("SKIP: the cross-process half needs flock(1): {e}"),
    }
    drop(first);
    let (_, r) = open(&dir.journal(), SyncPolicy::Always);
    assert_eq!(seqs(&r), vec![1], "the lock goes with the journal");
}

#[test]
fn a_directory_without_write_permission_gives_a_clear_error() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("noperm");
    let ro = dir.path().join("ro");
    fs::create_dir(&ro).unwrap();
    fs::set_permissions(&ro, fs::Permissions::from_mode(0o555)).unwrap();
    if fs::write(ro.join("probe"), b"").is_ok() {
        println!("SKIP: permissions do not bind this user (root): see the read-only mount test");
    } else {
        let err = try_open(&ro.join("outbox.wsj"), SyncPolicy::Always, 1 << 20).unwrap_err();
        assert_eq!(err.io_kind(), Some(ErrorKind::PermissionDenied), "{err}");
    }
    fs::set_permissions(&ro, fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn a_read_only_file_system_gives_a_clear_error() {
    let Some(mnt) = in_private_mount("a_read_only_file_system_gives_a_clear_error", "size=64k")
    else {
        return;
    };
    let path = mnt.join("outbox.wsj");
    let (mut j, _) = open(&path, SyncPolicy::Always);
    j.append(&msg(1), Instant::now()).unwrap();
    drop(j);
    remount_read_only(&mnt);
    let err = try_open(&path, SyncPolicy::Always, 1 << 20).unwrap_err();
    assert_eq!(err.io_kind(), Some(ErrorKind::ReadOnlyFilesystem), "{err}");
    assert!(
        err.to_string().contains(&mnt.display().to_string()),
        "names the file: {err}"
    );
    println!("read-only error: {err}");
}

#[test]
fn a_full_disk_gives_an_error_and_keeps_what_was_accepted() {
    let Some(mnt) = in_private_mount(
        "a_full_disk_gives_an_error_and_keeps_what_was_accepted",
        "size=64k",
    ) else {
        return;
    };
    let path = mnt.join("outbox.wsj");
    let (mut j, _) = open(&path, SyncPolicy::Always);
    let now = Instant::now();
    let big = |i: u64| Message::binary(vec![i as u8; 1000]);
    let mut accepted = Vec::new();
    let err = loop {
        match j.append(&big(accepted.len() as u64 + 1), now) {
            Ok(seq) => accepted.push(seq),
            Err(e) => break e,
        }
        assert!(
            accepted.len() < 1000,
            "a 64 KiB file system never filled up"
        );
    };
    assert_eq!(err.io_kind(), Some(ErrorKind::StorageFull), "{err}");
    println!("full-disk error after {} messages: {err}", accepted.len());
    assert_eq!(j.pending(), accepted.len());
    drop(j);
    // The failed append left no partial record behind.
    let (mut j, r) = open(&path, SyncPolicy::Always);
    assert_eq!(seqs(&r), accepted);
    assert_eq!(r.skipped_bytes, 0);
    // On a full disk, acknowledging and compacting give errors at worst, never a panic, and
    // a restart restores the acknowledged messages again (at-least-once) or none of them.
    let _ = j.append(&Message::text("x"), now);
    let _ = j.ack_through(u64::MAX, now);
    let _ = j.handle_timeout(now + std::time::Duration::from_secs(60));
    drop(j);
    let (_, r) = open(&path, SyncPolicy::Always);
    assert!(r.messages.len() <= accepted.len() + 1);
}

/// In the parent: runs `test` again in a private mount namespace and returns `None` (the child
/// did the work, or the test was skipped). In the child: mounts a tmpfs with `options` on the
/// directory the parent made (and removes when the child is done) and returns it.
fn in_private_mount(test: &str, options: &str) -> Option<PathBuf> {
    let name = test_name(module_path!(), test);
    let Some(mnt) = std::env::var_os(MOUNT_CHILD) else {
        let dir = TempDir::new("mnt");
        let out = self_command(&["unshare", "--mount", "--propagation", "private"], &name)
            .env(MOUNT_CHILD, dir.path())
            .output();
        let skip = |why: String| {
            assert!(
                std::env::var("WSBEAT_REQUIRE_PEERS").as_deref() != Ok("1"),
                "{test}: needs a private mount namespace: {why}"
            );
            println!("SKIP: {test}: needs a private mount namespace (root): {why}");
        };
        match out {
            Err(e) => skip(format!("unshare(1): {e}")),
            Ok(out) => {
                let stdout = String::from_utf8_lossy(&out.stdout);
                let stderr = String::from_utf8_lossy(&out.stderr);
                if stderr.starts_with("unshare:") {
                    skip(stderr.trim().to_string());
                } else if let Some(line) = stdout.lines().find(|l| l.starts_with("SKIP:")) {
                    skip(line.to_string());
                } else {
                    assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
                    assert!(stdout.contains("1 passed"), "child ran no test:\n{stdout}");
                    stdout
                        .lines()
                        .filter(|l| l.contains("error"))
                        .for_each(|l| println!("{l}"));
                }
            }
        }
        return None;
    };
    let mnt = PathBuf::from(mnt);
    let status = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", options, "wsbeat-journal-test"])
        .arg(&mnt)
        .status();
    match status {
        Ok(s) if s.success() => Some(mnt),
        other => {
            println!("SKIP: mount -t tmpfs: {other:?}");
            None
        }
    }
}

/// Remounts the child's tmpfs read-only.
fn remount_read_only(mnt: &Path) {
    let status = std::process::Command::new("mount")
        .args(["-o", "remount,ro"])
        .arg(mnt)
        .status()
        .unwrap();
    assert!(status.success(), "remount read-only");
}

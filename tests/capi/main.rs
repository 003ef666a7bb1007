//! Tests of the C API (`include/wsbeat.h`, feature `capi`): the C test runner in
//! `tests/capi/*.c` against the loopback test server of `tests/common`, natively in three
//! variants (shared library; AddressSanitizer with the static library; Valgrind with
//! `--leak-check=full --error-exitcode=1`), and under qemu when cross-testing. The library
//! is built by `capi/build.sh` (see `cbuild.rs`), whatever features this test binary has.
#![forbid(unsafe_code)]

#[path = "../common/mod.rs"]
mod common;

mod cbuild;
mod example;
mod run;

use std::process::Command;
use std::thread;
use std::time::Duration;

use cbuild::{built, Variant};
use common::{refused_port, watchdog, Mode, Received, TestServer};
use run::CaseRun;

/// Generous: a Valgrind run is tens of times slower than a plain one.
const CASE_LIMIT: Duration = Duration::from_secs(120);
const TEST_LIMIT: Duration = Duration::from_secs(600);

/// Runs a case that needs no server action in every variant.
fn run_simple(case: &str, port: u16) {
    let b = built();
    for v in b.variants() {
        CaseRun::start(b, v, case, port).finish(CASE_LIMIT);
    }
}

#[test]
fn c_header_compiles_as_c99_and_cxx() {
    let _w = watchdog(TEST_LIMIT, "c_header_compiles_as_c99_and_cxx");
    let b = built();
    let dir = b.root.join("target/capi/header-check");
    std::fs::create_dir_all(&dir).expect("header-check dir");
    let src = "#include <wsbeat.h>\nint main(void) { return wsbeat_version() == 0; }\n";
    std::fs::write(dir.join("h.c"), src).expect("write h.c");
    std::fs::write(dir.join("h.cpp"), src.replace("(void)", "()")).expect("write h.cpp");
    // The header is the same text for every target: the host compilers check it.
    let (cc, cxx) = ("cc".to_string(), "c++".to_string());
    let strict = ["-Wall", "-Wextra", "-Werror", "-pedantic", "-fsyntax-only"];
    for tls in [false, true] {
        for (compiler, std, file) in [(&cc, "-std=c99", "h.c"), (&cxx, "-std=c++11", "h.cpp")] {
            let mut cmd = Command::new(compiler);
            cmd.arg(std)
                .args(strict)
                .arg(format!("-I{}", b.root.join("include").display()))
                .arg(dir.join(file));
            if tls {
                cmd.arg("-DWSBEAT_FEATURE_TLS");
            }
            cbuild::run(&mut cmd, &format!("{compiler} {std} (tls: {tls})")).unwrap();
        }
    }
}

#[test]
fn c_library_exports_exactly_the_header_functions() {
    let _w = watchdog(TEST_LIMIT, "c_library_exports_exactly_the_header_functions");
    let b = built();
    let header = std::fs::read_to_string(b.root.join("include/wsbeat.h")).expect("header");
    // Declarations: `name(` at a word start, not a function-pointer typedef `(*name)(`.
    let mut declared: Vec<String> = header
        .split(|c: char| c.is_whitespace() || c == '*')
        .filter_map(|w| w.split_once('(').map(|(name, _)| name))
        .filter(|w| w.starts_with("wsbeat_") && w.chars().all(|c| c.is_alphanumeric() || c == '_'))
        .map(String::from)
        .collect();
    if !b.tls {
        // cbindgen guards each TLS declaration with its own #if ... #endif.
        let tls_parts: Vec<&str> = header
            .split("#if defined(WSBEAT_FEATURE_TLS)")
            .skip(1)
            .filter_map(|s| s.split("#endif").next())
            .collect();
        declared.retain(|f| !tls_parts.iter().any(|p| p.contains(&format!("{f}("))));
    }
    declared.sort();
    declared.dedup();
    let nm = if b.is_cross() {
        b.cc.replace("gcc", "nm")
    } else {
        "nm".into()
    };
    let so = b.prefix.join("lib/libwsbeat.so");
    let out = cbuild::run(
        Command::new(&nm).args(["-D", "--defined-only"]).arg(&so),
        "nm",
    )
    .unwrap();
    let mut exported: Vec<String> = out
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .filter(|s| !s.starts_with('_') && *s != "rust_eh_personality")
        .map(String::from)
        .collect();
    exported.sort();
    assert_eq!(
        declared, exported,
        "header declarations vs exported symbols"
    );
    assert!(declared.len() > 50, "{} functions", declared.len());
}

#[test]
fn c_every_null_argument_is_refused() {
    let _w = watchdog(TEST_LIMIT, "c_every_null_argument_is_refused");
    run_simple("null_arguments", 9);
}

#[test]
fn c_every_status_code_path() {
    let _w = watchdog(TEST_LIMIT, "c_every_status_code_path");
    run_simple("status_codes", 9);
}

#[test]
fn c_connects_and_echoes_text_and_binary() {
    let _w = watchdog(TEST_LIMIT, "c_connects_and_echoes_text_and_binary");
    let b = built();
    for v in b.variants() {
        let server = TestServer::start(Mode::Echo);
        CaseRun::start(b, v, "echo", server.port()).finish(CASE_LIMIT);
        let got = server.received();
        assert_eq!(
            got,
            [
                Received::Text("queued".into()),
                Received::Text("hello".into()),
                Received::Binary(vec![0, 1, 2, 255]),
            ],
            "{v:?}"
        );
        server.wait_for(Duration::from_secs(5), "the close frame", |s| {
            s.close_frames_received() == [Some(1000)]
        });
    }
}

#[test]
fn c_frozen_server_detected_at_the_bound() {
    let _w = watchdog(TEST_LIMIT, "c_frozen_server_detected_at_the_bound");
    let b = built();
    for v in b.variants() {
        let server = TestServer::start(Mode::Echo);
        let mut run = CaseRun::start(b, v, "frozen", server.port());
        run.wait_mark("CONNECTED", CASE_LIMIT);
        server.freeze();
        run.finish(CASE_LIMIT);
    }
}

#[test]
fn c_reconnects_after_server_restart() {
    let _w = watchdog(TEST_LIMIT, "c_reconnects_after_server_restart");
    let b = built();
    for v in b.variants() {
        let server = TestServer::start(Mode::Echo);
        let port = server.port();
        let mut run = CaseRun::start(b, v, "restart", port);
        run.wait_mark("CONNECTED", CASE_LIMIT);
        server.stop();
        thread::sleep(Duration::from_millis(300));
        let again = TestServer::start_on(port, Mode::Echo).expect("restart on the same port");
        let attempt = run.wait_mark("CONNECTED", CASE_LIMIT);
        assert!(attempt >= 2, "{v:?}: reconnected on attempt {attempt}");
        run.finish(CASE_LIMIT);
        assert_eq!(again.handshakes(), 1, "{v:?}");
    }
}

#[test]
fn c_gives_up_after_max_retries() {
    let _w = watchdog(TEST_LIMIT, "c_gives_up_after_max_retries");
    run_simple("give_up", refused_port());
}

#[test]
fn c_close_code_passes_through() {
    let _w = watchdog(TEST_LIMIT, "c_close_code_passes_through");
    let b = built();
    for v in b.variants() {
        let server = TestServer::start(Mode::Echo);
        let mut run = CaseRun::start(b, v, "close_code", server.port());
        run.wait_mark("CONNECTED", CASE_LIMIT);
        server.close_all(4001, "revoked");
        run.finish(CASE_LIMIT);
        server.wait_for(Duration::from_secs(5), "our close code 4000", |s| {
            s.close_frames_received().contains(&Some(4000))
        });
    }
}

#[test]
fn c_request_hook_renews_the_authorization_header() {
    let _w = watchdog(TEST_LIMIT, "c_request_hook_renews_the_authorization_header");
    let b = built();
    for v in b.variants() {
        let server = TestServer::start(Mode::Echo);
        let mut run = CaseRun::start(b, v, "hook", server.port());
        let first = run.wait_mark("CONNECTED", CASE_LIMIT);
        server.drop_all();
        let second = run.wait_mark("CONNECTED", CASE_LIMIT);
        run.finish(CASE_LIMIT);
        let requests = server.request_headers();
        let auth: Vec<Vec<String>> = requests
            .iter()
            .map(|h| {
                h.iter()
                    .filter(|(n, _)| n == "authorization")
                    .map(|(_, v)| v.clone())
                    .collect()
            })
            .collect();
        assert_eq!(
            auth.first(),
            Some(&vec![format!("Bearer token-{first}")]),
            "{v:?}"
        );
        assert_eq!(
            auth.last(),
            Some(&vec![format!("Bearer token-{second}")]),
            "{v:?}"
        );
        assert!(
            requests.iter().flatten().all(|(n, _)| n != "x-stale"),
            "{v:?}: the hook removed X-Stale"
        );
    }
}

#[test]
fn c_waker_ends_poll_from_a_signal_handler_and_a_thread() {
    let _w = watchdog(
        TEST_LIMIT,
        "c_waker_ends_poll_from_a_signal_handler_and_a_thread",
    );
    run_simple("waker", refused_port());
}

#[test]
fn c_log_records_reach_the_callback() {
    let _w = watchdog(TEST_LIMIT, "c_log_records_reach_the_callback");
    run_simple("log", refused_port());
}

#[test]
fn c_delivery_setters_refuse_null_and_invalid_arguments() {
    let _w = watchdog(
        TEST_LIMIT,
        "c_delivery_setters_refuse_null_and_invalid_arguments",
    );
    run_simple("delivery_arguments", 9);
}

#[test]
fn c_drop_oldest_reports_dropped_and_events_carry_their_instants() {
    let _w = watchdog(
        TEST_LIMIT,
        "c_drop_oldest_reports_dropped_and_events_carry_their_instants",
    );
    run_simple("dropped", refused_port());
}

#[test]
fn c_at_least_once_requeues_unproven_messages() {
    let _w = watchdog(TEST_LIMIT, "c_at_least_once_requeues_unproven_messages");
    let b = built();
    for v in b.variants() {
        let server = TestServer::start(Mode::Echo);
        let mut run = CaseRun::start(b, v, "requeue", server.port());
        run.wait_mark("SENT", CASE_LIMIT);
        server.drop_all();
        run.finish(CASE_LIMIT);
        let r1 = Received::Text("r1".into());
        assert_eq!(server.received(), [r1.clone(), r1], "{v:?}: sent again");
    }
}

#[test]
fn c_outbox_file_survives_the_client_and_delivers_after_reconnect() {
    let _w = watchdog(
        TEST_LIMIT,
        "c_outbox_file_survives_the_client_and_delivers_after_reconnect",
    );
    let b = built();
    for v in b.variants() {
        // A port that refuses until the case has queued, freed and restored.
        let port = {
            let server = TestServer::start(Mode::Echo);
            let port = server.port();
            server.stop();
            port
        };
        let mut run = CaseRun::start(b, v, "outbox_file", port);
        run.wait_mark("RESTORED", CASE_LIMIT);
        let server = TestServer::start_on(port, Mode::Echo).expect("the server on that port");
        run.finish(CASE_LIMIT);
        let text = |s: &str| Received::Text(s.into());
        assert_eq!(
            server.received(),
            [text("hello"), text("m1"), text("m2"), text("m3")],
            "{v:?}: the hello first, then the restored messages in order"
        );
    }
}

#[test]
fn c_variants_cover_asan_and_valgrind_natively() {
    // Makes the coverage visible in the test list: natively every case runs three times.
    let b = built();
    if b.is_cross() {
        assert_eq!(b.variants(), [Variant::Plain]);
    } else {
        assert_eq!(
            b.variants(),
            [Variant::Plain, Variant::Asan, Variant::Valgrind]
        );
    }
}

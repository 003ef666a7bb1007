//! An idle heartbeat cycle (ping out, pong in, events) allocates nothing once connected.
//! A counting global allocator counts only the client's thread, so the in-process test
//! server's allocations do not blur the figure.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::drive::{is, until};
use common::{watchdog, Mode, TestServer};
use wsbeat::{Client, Config, Event};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

// SAFETY: delegates to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_over_ten_idle_cycles(config: Config) -> u64 {
    let mut client = Client::new(config).unwrap();
    // Warm up: connect and let a few cycles size every buffer.
    for _ in 0..5 {
        until(&mut client, Duration::from_secs(5), "pong", is("pong"));
    }
    ALLOCATIONS.store(0, Ordering::Relaxed);
    COUNTING.with(|c| c.set(true));
    let mut pongs = 0;
    while pongs < 10 {
        match client.poll(Duration::from_secs(1)) {
            Some(Event::Pong { .. }) => pongs += 1,
            Some(Event::Ping { .. }) | None => {}
            Some(_) => break,
        }
    }
    COUNTING.with(|c| c.set(false));
    assert_eq!(pongs, 10, "the link must stay healthy");
    ALLOCATIONS.load(Ordering::Relaxed)
}

#[test]
fn idle_heartbeat_cycles_allocate_nothing() {
    let _w = watchdog(Duration::from_secs(20), "idle_alloc");
    let server = TestServer::start(Mode::Echo);
    let config = Config::new(server.url()).ping_interval(Duration::from_millis(20));
    assert_eq!(allocations_over_ten_idle_cycles(config), 0);
}

#[test]
fn idle_application_heartbeat_cycles_allocate_nothing() {
    let _w = watchdog(Duration::from_secs(20), "idle_alloc_app");
    let server = TestServer::start(Mode::Echo);
    let config = Config::new(server.url())
        .ping_interval(Duration::from_millis(20))
        .app_heartbeat(wsbeat::AppHeartbeat::new(
            wsbeat::Message::text("hb"),
            wsbeat::Message::text("hb"),
        ));
    assert_eq!(allocations_over_ten_idle_cycles(config), 0);
}

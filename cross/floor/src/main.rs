//! wsfloor: connect to a ws:// (or, with a TLS feature, wss://) URL, send each
//! stdin line as a text message and print the next text/binary reply.
use std::io::{self, BufRead, Write};
use tungstenite::{connect, Message};

fn main() {
    let url = match std::env::args().nth(1) {
        Some(u) => u,
        None => {
            eprintln!("usage: wsfloor ws://host:port/path  (reads lines from stdin)");
            std::process::exit(2);
        }
    };
    let (mut ws, _resp) = match connect(url.as_str()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("connect {url}: {e}");
            std::process::exit(1);
        }
    };
    let stdout = io::stdout();
    for line in io::stdin().lock().lines() {
        let line = match line {
            Ok(l) => l,
            Err(_) => break,
        };
        if let Err(e) = ws.send(Message::text(line)) {
            eprintln!("send: {e}");
            std::process::exit(1);
        }
        loop {
            match ws.read() {
                Ok(Message::Text(t)) => {
                    let _ = writeln!(stdout.lock(), "{t}");
                    break;
                }
                Ok(Message::Binary(b)) => {
                    let _ = writeln!(stdout.lock(), "<{} bytes>", b.len());
                    break;
                }
                Ok(Message::Close(_)) => return,
                Ok(_) => continue, // ping/pong/frame: tungstenite answers pings itself
                Err(e) => {
                    eprintln!("read: {e}");
                    std::process::exit(1);
                }
            }
        }
    }
    let _ = ws.close(None);
    let _ = ws.flush();
}

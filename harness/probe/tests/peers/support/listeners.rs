//! TCP peers that are not TLS servers, for the probe's failure paths.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener};

/// Answers every connection with an HTTP 400 and closes, like a plaintext port would.
pub struct PlaintextHttp {
    pub port: u16,
}

impl PlaintextHttp {
    pub fn start() -> Self {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        // The thread ends with the test process; the listener is not worth a shutdown dance.
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut hello = [0u8; 512];
                let _ = stream.read(&mut hello);
                let _ = stream.write_all(
                    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        });
        Self { port }
    }
}

/// Accepts connections (the kernel does, from the backlog) and never says a word.
pub struct Silent {
    _listener: TcpListener,
    pub port: u16,
}

impl Silent {
    pub fn start() -> Self {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        Self {
            _listener: listener,
            port,
        }
    }
}

/// A port nothing listens on.
pub fn closed_port() -> u16 {
    super::openssl::free_port()
}

//! ws:// and wss:// through a real HTTP proxy: Debian's tinyproxy, started on loopback.
//!
//! One test function, because it sets the proxy environment variables for the whole process.
//! Skipped (with a message) when tinyproxy is not installed, unless SYNCWS_REQUIRE_TINYPROXY is
//! set, as `.ci/run` does after installing it.

#[cfg(feature = "native-tls")]
#[path = "common/certs.rs"]
mod certs;
mod common;

use common::{DEADLINE, serve_once};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;
use syncws::{ClientBuilder, Message, Proxy};

struct Tinyproxy {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_tinyproxy(connect_ports: &[u16]) -> Option<Tinyproxy> {
    let binary = ["/usr/bin/tinyproxy", "/usr/sbin/tinyproxy"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let Some(binary) = binary else {
        assert!(
            std::env::var_os("SYNCWS_REQUIRE_TINYPROXY").is_none(),
            "tinyproxy is required but not installed"
        );
        eprintln!("tinyproxy not installed: skipped (apt-get install tinyproxy)");
        return None;
    };
    // tinyproxy cannot report a port it chose: take a free one from the OS, then hand it over.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = std::env::temp_dir().join(format!("syncws-tinyproxy-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("tinyproxy.log");
    let ports: String = connect_ports
        .iter()
        .map(|p| format!("ConnectPort {p}\n"))
        .collect();
    let conf = format!(
        "Port {port}\nListen 127.0.0.1\nTimeout 30\nAllow 127.0.0.1\nLogLevel Connect\nLogFile \"{}\"\nMaxClients 20\nBasicAuth bob secret\n{ports}",
        log.display()
    );
    let conf_path = dir.join("tinyproxy.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let child = Command::new(binary)
        .args(["-d", "-c"])
        .arg(&conf_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait (bounded) until it accepts.
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < DEADLINE, "tinyproxy did not start");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Some(Tinyproxy { child, port, log })
}

fn echo_once() -> (u16, std::thread::JoinHandle<()>) {
    let (addr, handle) = serve_once(|stream| {
        let mut ws = syncws::accept(stream).unwrap();
        while let Ok(msg) = ws.read() {
            if msg.is_data() {
                ws.send(msg).unwrap();
            }
        }
    });
    (addr.port(), handle)
}

fn round_trip(builder: ClientBuilder, text: &str) {
    let (mut ws, _) = builder.connect().unwrap();
    ws.send(Message::text(text)).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text(text));
}

#[test]
fn ws_and_wss_through_tinyproxy() {
    let servers: Vec<_> = (0..3).map(|_| echo_once()).collect();
    #[cfg_attr(not(feature = "native-tls"), allow(unused_mut))]
    let mut ports: Vec<u16> = servers.iter().map(|(p, _)| *p).collect();
    #[cfg(feature = "native-tls")]
    let (pki, wss_server) = {
        let pki = certs::make();
        let identity =
            native_tls::Identity::from_pkcs8(pki.server.cert.as_bytes(), pki.server.key.as_bytes())
                .unwrap();
        let acceptor = native_tls::TlsAcceptor::new(identity).unwrap();
        let (addr, handle) = serve_once(move |tcp| {
            let mut ws = syncws::accept(acceptor.accept(tcp).unwrap()).unwrap();
            let msg = ws.read().unwrap();
            ws.send(msg).unwrap();
        });
        ports.push(addr.port());
        (pki, handle)
    };
    let Some(proxy) = start_tinyproxy(&ports) else {
        return;
    };
    let proxy_url = format!("http://bob:secret@127.0.0.1:{}", proxy.port);

    // 1. Configured explicitly.
    round_trip(
        ClientBuilder::new(format!("ws://127.0.0.1:{}/", ports[0]))
            .proxy(Proxy::parse(&proxy_url).unwrap()),
        "explicit",
    );
    // 2. From the environment, upper-case name.
    set_env_single_threaded("HTTP_PROXY", &proxy_url);
    round_trip(
        ClientBuilder::new(format!("ws://127.0.0.1:{}/", ports[1])),
        "from env",
    );
    // 3. Wrong credentials are refused with 407.
    let bad = Proxy::parse(&format!("http://bob:wrong@127.0.0.1:{}", proxy.port)).unwrap();
    let err = ClientBuilder::new(format!("ws://127.0.0.1:{}/", ports[2]))
        .proxy(bad)
        .connect()
        .unwrap_err();
    assert!(
        matches!(&err, syncws::Error::Proxy(e) if e.status().is_some() && e.to_string().contains("credentials")),
        "{err}"
    );
    // 4. wss through the tunnel, from https_proxy: TLS runs end to end, the proxy sees bytes only.
    #[cfg(feature = "native-tls")]
    {
        set_env_single_threaded("https_proxy", &proxy_url);
        round_trip(
            ClientBuilder::new(format!("wss://localhost:{}/", ports[3]))
                .root_certificate(pki.ca.cert.as_bytes()),
            "secure",
        );
        wss_server.join().unwrap();
        let log = std::fs::read_to_string(&proxy.log).unwrap_or_default();
        assert!(log.contains(&format!("localhost:{}", ports[3])), "{log}");
    }
    // 5. no_proxy sends the same URL direct.
    set_env_single_threaded("no_proxy", "127.0.0.1");
    round_trip(
        ClientBuilder::new(format!("ws://127.0.0.1:{}/", ports[2])),
        "direct",
    );

    let log = std::fs::read_to_string(&proxy.log).unwrap_or_default();
    assert!(log.contains(&format!("127.0.0.1:{}", ports[0])), "{log}");
    assert!(log.contains(&format!("127.0.0.1:{}", ports[1])), "{log}");
    drop(proxy);
    for (_, server) in servers {
        server.join().unwrap();
    }
}

/// `std::env::set_var` is `unsafe` in edition 2024 because another thread might read the
/// environment at the same time; here only the test's own thread reads it (this binary holds one
/// test, and the server threads never look at the environment).
fn set_env_single_threaded(name: &str, value: &str) {
    unsafe { std::env::set_var(name, value) };
}

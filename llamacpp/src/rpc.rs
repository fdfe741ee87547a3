//! ggml's RPC backend: serving this machine's CPU (`glassbox rpc-server`), and the client side's
//! devices, one per server, that a model's layers are split across. The protocol has no
//! authentication; ggml aborts the process when a server cannot be reached, so every address is
//! checked here first with a bounded connect.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::ffi;

/// How long a server gets to accept a connection before its address is called bad.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// `host:port` resolved, or a one-line error naming it.
pub fn resolve(endpoint: &str) -> Result<SocketAddr, String> {
    let bad = |why: &str| format!("--rpc {endpoint}: {why} (expected HOST:PORT, e.g. 127.0.0.1:50052)");
    let (host, port) = endpoint.rsplit_once(':').ok_or_else(|| bad("no port"))?;
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(bad("not a host and a port"));
    }
    endpoint.to_socket_addrs().map_err(|e| bad(&e.to_string()))?.next().ok_or_else(|| bad("the host resolves to no address"))
}

/// Checks that a server accepts connections at `endpoint` within [`CONNECT_TIMEOUT`].
pub fn check_reachable(endpoint: &str) -> Result<(), String> {
    let addr = resolve(endpoint)?;
    TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)
        .map(drop)
        .map_err(|e| format!("--rpc {endpoint}: no server answers ({e}); start one there with `glassbox rpc-server --port {}`", addr.port()))
}

/// The devices of the servers at `endpoints`, each checked reachable first.
pub fn devices(endpoints: &[String]) -> Result<Vec<ffi::ggml_backend_dev_t>, String> {
    let mut out = Vec::new();
    for endpoint in endpoints {
        check_reachable(endpoint)?;
        let c = CString::new(endpoint.as_str()).map_err(|_| format!("--rpc {endpoint}: holds a NUL byte"))?;
        // SAFETY: `c` is NUL-terminated; the server was reachable a moment ago.
        let reg = unsafe { ffi::ggml_backend_rpc_add_server(c.as_ptr()) };
        if reg.is_null() {
            return Err(format!("--rpc {endpoint}: the server offers no device"));
        }
        // SAFETY: `reg` is a live registry returned above; its devices live for the process.
        let n = unsafe { ffi::ggml_backend_reg_dev_count(reg) };
        for i in 0..n {
            // SAFETY: `i` is below the registry's device count.
            out.push(unsafe { ffi::ggml_backend_reg_dev_get(reg, i) });
        }
    }
    Ok(out)
}

/// Serves this machine's CPU at `host:port` with `threads` threads until the process ends.
/// Returns only when it could not start.
pub fn serve(host: &str, port: u16, threads: usize) -> Result<(), String> {
    let endpoint = format!("{host}:{port}");
    // ggml prints its own failure to bind and returns; binding here first names it properly.
    std::net::TcpListener::bind((host, port)).map(drop).map_err(|e| format!("rpc-server: cannot listen on {endpoint}: {e}"))?;
    ffi::init();
    let c = CString::new(endpoint.as_str()).map_err(|_| "rpc-server: the host holds a NUL byte".to_string())?;
    // SAFETY: device lookup by type has no preconditions once the backends are initialised.
    let mut cpu = unsafe { ffi::ggml_backend_dev_by_type(ffi::GGML_BACKEND_DEVICE_TYPE_CPU) };
    if cpu.is_null() {
        return Err("rpc-server: ggml has no CPU device".to_string());
    }
    // SAFETY: `c` is NUL-terminated; one device pointer, valid for the process; no cache dir.
    unsafe { ffi::ggml_backend_rpc_start_server(c.as_ptr(), std::ptr::null(), threads.max(1), 1, &mut cpu) };
    Err(format!("rpc-server: ggml's server on {endpoint} stopped"))
}

/// Whether `host` only accepts connections from this machine.
pub fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_addresses_are_one_line_errors() {
        for bad in ["nohost", "127.0.0.1:", ":50052", "127.0.0.1:99999", "127.0.0.1:x"] {
            let e = resolve(bad).unwrap_err();
            assert!(e.contains(bad) && !e.contains('\n'), "{e}");
        }
        assert!(is_loopback("127.0.0.1") && is_loopback("::1") && !is_loopback("0.0.0.0"));
    }
}

//! What the runner measures with and talks to: the server process (started,
//! pinned, killed), its CPU time, a plain HTTP/1.1 client, wrk, and Redis's
//! own counters.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub(crate) type BoxError = Box<dyn std::error::Error>;

/// How long a server may take to print `ready`.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A running `bench-server`, killed when dropped, so that no error path of
/// the runner leaves one behind.
pub(crate) struct Server {
    child: Child,
    pub(crate) addr: String,
}

impl Server {
    /// Starts `binary variant` pinned to CPU 0 and waits for its `ready` line.
    pub(crate) fn start(
        binary: &Path,
        variant: &str,
        fields: usize,
        store_url: Option<&str>,
    ) -> Result<Self, BoxError> {
        let mut command = Command::new("taskset");
        command
            .args(["-c", "0"])
            .arg(binary)
            .arg(variant)
            .env("PORT", "0")
            .env("FIELDS", fields.to_string())
            .stdout(Stdio::piped());
        if let Some(url) = store_url {
            command.env("STORE_URL", url);
        }
        let mut child = command.spawn()?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut server = Self {
            child,
            addr: String::new(),
        };
        // A thread reads stdout: it hands over the `ready` line, then keeps
        // draining so that the server never blocks on a full pipe.
        let (ready, wait) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("ready ") {
                    let _ = ready.send(addr.to_owned());
                }
            }
        });
        server.addr = wait
            .recv_timeout(READY_TIMEOUT)
            .map_err(|_| format!("{variant}: the server exited or was not ready in time"))?;
        Ok(server)
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// User plus system CPU time of `pid` so far, in clock ticks (fields 14 and
/// 15 of `/proc/<pid>/stat`; all threads of the process).
pub(crate) fn cpu_ticks(pid: u32) -> Result<u64, BoxError> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) is in parentheses and may hold spaces:
    // count from after it, where field 3 comes first.
    let rest = &stat[stat.rfind(')').ok_or("a /proc stat line without ')'")? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11).ok_or("no utime")?.parse()?;
    let stime: u64 = fields.get(12).ok_or("no stime")?.parse()?;
    Ok(utime + stime)
}

/// Clock ticks per second (`getconf CLK_TCK`).
pub(crate) fn clock_ticks_per_second() -> Result<u64, BoxError> {
    let out = Command::new("getconf").arg("CLK_TCK").output()?;
    Ok(String::from_utf8(out.stdout)?.trim().parse()?)
}

/// An answer of [`http_get`].
pub(crate) struct Response {
    pub(crate) status: u16,
    /// The `name=value` part of each `Set-Cookie`.
    pub(crate) cookies: Vec<String>,
    pub(crate) body: String,
}

/// `GET path` over a fresh connection (HTTP/1.1, `Connection: close`).
pub(crate) fn http_get(addr: &str, path: &str, cookie: Option<&str>) -> Result<Response, BoxError> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let cookie = cookie.map_or(String::new(), |c| format!("Cookie: {c}\r\n"));
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{cookie}Connection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let raw = String::from_utf8_lossy(&raw);
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("GET {path}: no end of headers in {raw:?}"))?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("GET {path}: no status line in {head:?}"))?;
    let cookies = lines
        .filter_map(|line| line.split_once(':'))
        .filter(|(name, _)| name.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, value)| value.trim().split(';').next().unwrap_or("").to_owned())
        .collect();
    Ok(Response {
        status,
        cookies,
        body: body.trim().to_owned(),
    })
}

/// Cookie headers round-robin over the lines of the file named by the
/// script's argument, on the URL's path; `done` prints one line for the
/// runner: requests, requests/s, p50 and p99 (µs), and the errors by kind
/// (connect, read, write, status ≥ 400, timeout).
pub(crate) const ROTATE_LUA: &str = r#"local reqs, n, i = {}, 0, 0

function init(args)
  for line in io.lines(args[1]) do
    n = n + 1
    reqs[n] = wrk.format("GET", wrk.path, { ["Cookie"] = line })
  end
  assert(n > 0, "no cookies in " .. args[1])
end

function request()
  i = i % n + 1
  return reqs[i]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %.1f %d %d %d %d %d %d %d\n",
    summary.requests, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
"#;

/// What one wrk run reports.
pub(crate) struct WrkResult {
    pub(crate) requests: u64,
    pub(crate) rps: f64,
    pub(crate) p50_us: f64,
    pub(crate) p99_us: f64,
}

/// Runs wrk pinned to CPU 1: one thread, 32 connections, `seconds` long.
/// Any error or non-2xx answer fails the run.
pub(crate) fn wrk(
    url: &str,
    seconds: u64,
    script: &Path,
    cookies: &Path,
) -> Result<WrkResult, BoxError> {
    let out = Command::new("taskset")
        .args(["-c", "1", "wrk", "-t1", "-c32"])
        .arg(format!("-d{seconds}s"))
        .arg("--latency")
        .arg("-s")
        .arg(script)
        .arg(url)
        .arg(cookies)
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "wrk {url} failed ({}): {stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let line = stdout
        .lines()
        .find_map(|line| line.strip_prefix("RESULT "))
        .ok_or_else(|| format!("wrk {url}: no RESULT line in {stdout}"))?;
    let v: Vec<f64> = line
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let [requests, rps, p50, p99, connect, read, write, status, timeout] = v[..] else {
        return Err(format!("wrk {url}: a RESULT line of {} numbers", v.len()).into());
    };
    if connect + read + write + status + timeout > 0.0 || stdout.contains("Non-2xx") {
        return Err(format!(
            "wrk {url}: errors (connect {connect}, read {read}, write {write}, \
             status {status}, timeout {timeout}):\n{stdout}"
        )
        .into());
    }
    Ok(WrkResult {
        requests: requests as u64,
        rps,
        p50_us: p50,
        p99_us: p99,
    })
}

/// A RESP value, as much of it as the runner reads.
#[derive(Debug)]
enum Resp {
    /// A simple or bulk string, or an integer as its digits.
    Text(String),
    Nil,
    Array(Vec<Resp>),
}

/// One connection to Redis for the runner's own commands.
pub(crate) struct Redis {
    reader: BufReader<TcpStream>,
}

/// Redis's counters at one moment.
#[derive(Clone, Debug, Default)]
pub(crate) struct RedisStats {
    /// `total_net_input_bytes`: bytes clients sent to Redis.
    pub(crate) input_bytes: f64,
    /// `total_commands_processed`.
    pub(crate) commands: f64,
    /// `rdb_changes_since_last_save`: changes to the data (Redis counts
    /// every write there, scripts' included).
    pub(crate) changes: f64,
    /// `used_cpu_user` + `used_cpu_sys`: Redis's own CPU time, seconds.
    pub(crate) cpu_seconds: f64,
    /// `calls` of each command (`INFO commandstats`; commands that scripts
    /// run count too).
    pub(crate) calls: BTreeMap<String, f64>,
}

impl RedisStats {
    /// `self - before`.
    pub(crate) fn since(&self, before: &Self) -> Self {
        let calls = self
            .calls
            .iter()
            .map(|(name, calls)| {
                let was = before.calls.get(name).copied().unwrap_or(0.0);
                (name.clone(), calls - was)
            })
            .filter(|(_, calls)| *calls != 0.0)
            .collect();
        Self {
            input_bytes: self.input_bytes - before.input_bytes,
            commands: self.commands - before.commands,
            changes: self.changes - before.changes,
            cpu_seconds: self.cpu_seconds - before.cpu_seconds,
            calls,
        }
    }
}

impl Redis {
    /// Connects to `redis://host:port` (no auth, no database: the throwaway
    /// server of `scripts/with-redis`).
    pub(crate) fn connect(url: &str) -> Result<Self, BoxError> {
        let addr = url
            .strip_prefix("redis://")
            .ok_or_else(|| format!("{url}: not a redis:// URL"))?
            .trim_end_matches('/');
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(Self {
            reader: BufReader::new(stream),
        })
    }

    fn command(&mut self, args: &[&str]) -> Result<Resp, BoxError> {
        let mut out = format!("*{}\r\n", args.len());
        for arg in args {
            out += &format!("${}\r\n{arg}\r\n", arg.len());
        }
        self.reader.get_mut().write_all(out.as_bytes())?;
        self.read()
    }

    fn read(&mut self) -> Result<Resp, BoxError> {
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let line = line.trim_end_matches("\r\n");
        let (kind, rest) = line.split_at(1.min(line.len()));
        Ok(match kind {
            "+" | ":" => Resp::Text(rest.to_owned()),
            "-" => return Err(format!("redis: {rest}").into()),
            "$" => {
                let len: i64 = rest.parse()?;
                if len < 0 {
                    return Ok(Resp::Nil);
                }
                let mut data = vec![0; len as usize + 2];
                self.reader.read_exact(&mut data)?;
                data.truncate(len as usize);
                Resp::Text(String::from_utf8(data)?)
            }
            "*" => {
                let len: i64 = rest.parse()?;
                let mut items = Vec::new();
                for _ in 0..len.max(0) {
                    items.push(self.read()?);
                }
                Resp::Array(items)
            }
            _ => return Err(format!("redis: an unexpected reply {line:?}").into()),
        })
    }

    pub(crate) fn flushall(&mut self) -> Result<(), BoxError> {
        self.command(&["FLUSHALL"])?;
        Ok(())
    }

    /// `INFO stats`, `INFO persistence`, `INFO cpu` and `INFO commandstats`.
    pub(crate) fn stats(&mut self) -> Result<RedisStats, BoxError> {
        let mut stats = RedisStats::default();
        for section in ["stats", "persistence", "cpu", "commandstats"] {
            let Resp::Text(info) = self.command(&["INFO", section])? else {
                return Err("redis: INFO answered no text".into());
            };
            for line in info.lines() {
                let Some((name, value)) = line.split_once(':') else {
                    continue;
                };
                match name {
                    "total_net_input_bytes" => stats.input_bytes = value.trim().parse()?,
                    "total_commands_processed" => stats.commands = value.trim().parse()?,
                    "rdb_changes_since_last_save" => stats.changes = value.trim().parse()?,
                    "used_cpu_user" | "used_cpu_sys" => {
                        stats.cpu_seconds += value.trim().parse::<f64>()?
                    }
                    _ => {
                        if let Some(command) = name.strip_prefix("cmdstat_") {
                            let calls = value
                                .split(',')
                                .find_map(|kv| kv.strip_prefix("calls="))
                                .ok_or_else(|| format!("redis: no calls in {line}"))?;
                            stats.calls.insert(command.to_owned(), calls.parse()?);
                        }
                    }
                }
            }
        }
        Ok(stats)
    }

    /// Whether Redis flags `command` as a write (`COMMAND INFO`). Scripts
    /// (`eval`, `evalsha`, `fcall` and their read-only twins aside) count as
    /// writes: Redis flags the script, not the command.
    pub(crate) fn is_write(&mut self, command: &str) -> Result<bool, BoxError> {
        let base = command.split('|').next().unwrap_or(command);
        if matches!(base, "eval" | "evalsha" | "fcall") {
            return Ok(true);
        }
        let Resp::Array(infos) = self.command(&["COMMAND", "INFO", base])? else {
            return Err("redis: COMMAND INFO answered no array".into());
        };
        let flags = match infos.first() {
            Some(Resp::Array(info)) => info.get(2),
            _ => None,
        };
        Ok(match flags {
            Some(Resp::Array(flags)) => flags
                .iter()
                .any(|flag| matches!(flag, Resp::Text(f) if f == "write")),
            _ => false,
        })
    }

    /// The commands Redis receives while `run` runs, as `MONITOR` shows
    /// them: (whether a script ran it, lowercase name). A second connection
    /// watches; this one sends a marker afterwards, so that everything
    /// before it has arrived.
    pub(crate) fn monitor(
        &mut self,
        url: &str,
        run: impl FnOnce() -> Result<(), BoxError>,
    ) -> Result<Vec<(bool, String)>, BoxError> {
        let mut watch = Self::connect(url)?;
        watch.command(&["MONITOR"])?;
        run()?;
        let marker = format!("session-bench-marker-{}", std::process::id());
        self.command(&["ECHO", &marker])?;
        let mut seen = Vec::new();
        loop {
            let Resp::Text(line) = watch.read()? else {
                return Err("redis: MONITOR sent no text".into());
            };
            // `1700000000.123456 [0 127.0.0.1:5555] "get" "key"`; scripts'
            // commands show `[0 lua]`.
            let (source, command) = line
                .split_once(']')
                .ok_or_else(|| format!("redis: a MONITOR line {line:?}"))?;
            let mut args = command.split('"').skip(1).step_by(2);
            let name = args.next().unwrap_or("").to_ascii_lowercase();
            if name == "echo" && args.next() == Some(marker.as_str()) {
                return Ok(seen);
            }
            seen.push((source.ends_with("lua"), name));
        }
    }
}

//! From samples to `BENCHMARKS.md`: medians over rounds, ratios, the micro
//! and scale tables, and the issue's targets judged on the figures.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use crate::probe::BoxError;
use crate::{Options, GROWTH_FIELDS, GROWTH_VARIANTS, ROUTES, VARIANTS};

/// Redis's traffic of one run, per request.
#[derive(Debug, Clone)]
pub(crate) struct Redis {
    /// Bytes sent to Redis.
    pub(crate) bytes: f64,
    /// Redis's own CPU time (user + system, `INFO cpu`), µs.
    pub(crate) cpu_us: f64,
    /// Commands Redis processed, those scripts ran included (`INFO`).
    pub(crate) commands: f64,
    /// Changes to the data (`rdb_changes_since_last_save`).
    pub(crate) changes: f64,
    /// Changes to the data in the whole run, not per request.
    pub(crate) total_changes: f64,
    /// Calls per request by command name (`INFO commandstats`).
    pub(crate) by_name: BTreeMap<String, f64>,
    /// Commands the server sent, per request (`MONITOR`).
    pub(crate) sent: BTreeMap<String, f64>,
    /// Atomic writes the server sent, per request (`MONITOR`): each command
    /// Redis flags `write` sent on its own, each script not called through
    /// a read-only variant (`fcall_ro`, `evalsha_ro`, …), each `MULTI` block
    /// holding a write.
    pub(crate) writes: f64,
    /// Commands scripts ran, per request (`MONITOR`).
    pub(crate) scripted: BTreeMap<String, f64>,
}

/// One wrk run.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    pub(crate) rps: f64,
    /// Server CPU time (user + system) per request, µs.
    pub(crate) cpu_us: f64,
    pub(crate) p50_us: f64,
    pub(crate) p99_us: f64,
    pub(crate) redis: Option<Redis>,
}

/// Criterion medians by benchmark id (`group/function[/parameter]`), ns.
pub(crate) type Micro = BTreeMap<String, f64>;

/// One line of `bench-scale`.
#[derive(Debug, Clone)]
pub(crate) struct ScaleRow {
    pub(crate) name: String,
    pub(crate) value: f64,
    pub(crate) unit: String,
    pub(crate) note: String,
}

pub(crate) type Scale = Vec<ScaleRow>;

/// Everything one run measured.
#[derive(Debug)]
pub(crate) struct Measured {
    pub(crate) samples: BTreeMap<(String, usize, String), Vec<Sample>>,
    pub(crate) micro: Option<Micro>,
    pub(crate) scale: Option<Scale>,
    pub(crate) ticks_per_second: f64,
}

/// Median, min and max of a non-empty list.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spread {
    pub(crate) median: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
}

impl Spread {
    fn of(mut values: Vec<f64>) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let median = if n % 2 == 1 {
            values[n / 2]
        } else {
            (values[n / 2 - 1] + values[n / 2]) / 2.0
        };
        Some(Self {
            median,
            min: values[0],
            max: values[n - 1],
        })
    }

    fn show(&self, digits: usize) -> String {
        if self.min == self.max {
            format!("{:.digits$}", self.median)
        } else {
            format!(
                "{:.digits$} ({:.digits$}–{:.digits$})",
                self.median, self.min, self.max
            )
        }
    }
}

impl Measured {
    /// The spread of one figure of one (variant, fields, route) over rounds.
    pub(crate) fn spread(
        &self,
        variant: &str,
        fields: usize,
        route: &str,
        figure: impl Fn(&Sample) -> Option<f64>,
    ) -> Option<Spread> {
        let samples = self
            .samples
            .get(&(variant.to_owned(), fields, route.to_owned()))?;
        Spread::of(samples.iter().filter_map(figure).collect())
    }

    pub(crate) fn median(
        &self,
        variant: &str,
        fields: usize,
        route: &str,
        figure: impl Fn(&Sample) -> Option<f64>,
    ) -> Option<f64> {
        self.spread(variant, fields, route, figure)
            .map(|s| s.median)
    }
}

pub(crate) fn rps(s: &Sample) -> Option<f64> {
    Some(s.rps)
}

pub(crate) fn cpu(s: &Sample) -> Option<f64> {
    Some(s.cpu_us)
}

pub(crate) fn redis_bytes(s: &Sample) -> Option<f64> {
    s.redis.as_ref().map(|r| r.bytes)
}

pub(crate) fn redis_cpu(s: &Sample) -> Option<f64> {
    s.redis.as_ref().map(|r| r.cpu_us)
}

/// The server's and Redis's CPU per request together: what a request costs
/// the machine when both run on it.
pub(crate) fn total_cpu(s: &Sample) -> Option<f64> {
    Some(s.cpu_us + redis_cpu(s).unwrap_or(0.0))
}

fn redis_commands(s: &Sample) -> Option<f64> {
    s.redis.as_ref().map(|r| r.commands)
}

fn redis_writes(s: &Sample) -> Option<f64> {
    s.redis.as_ref().map(|r| r.writes)
}

/// The variant without sessions of the same framework.
fn ceiling(variant: &str) -> &'static str {
    if variant.starts_with("actix") || variant == "none-actix" {
        "none-actix"
    } else {
        "none"
    }
}

/// Reads the median estimate of every criterion benchmark written since
/// `since` under `dir` (`<id>/new/estimates.json`, id from `benchmark.json`).
pub(crate) fn read_criterion(dir: &Path, since: SystemTime) -> Result<Micro, BoxError> {
    let mut micro = Micro::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if !path.is_dir() {
                continue;
            }
            let estimates = path.join("new").join("estimates.json");
            if estimates.is_file() && std::fs::metadata(&estimates)?.modified()? >= since {
                let bench: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
                    path.join("new/benchmark.json"),
                )?)?;
                let id = bench["full_id"]
                    .as_str()
                    .ok_or("a criterion benchmark.json without full_id")?
                    .to_owned();
                let est: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(&estimates)?)?;
                let median = est["median"]["point_estimate"]
                    .as_f64()
                    .ok_or("a criterion estimates.json without a median")?;
                micro.insert(id, median);
            } else if path
                .file_name()
                .is_some_and(|n| n != "new" && n != "base" && n != "report")
            {
                stack.push(path);
            }
        }
    }
    if micro.is_empty() {
        return Err(format!("no criterion estimates written under {}", dir.display()).into());
    }
    Ok(micro)
}

/// Pairs of (our id, tower-sessions' id) in the micro results.
fn micro_pairs(micro: &Micro) -> Vec<(String, f64, Option<f64>)> {
    let mut pairs = micro
        .iter()
        .filter(|(id, _)| id.split('/').nth(1) == Some("session"))
        .map(|(id, ours)| {
            let theirs_id = id.replacen("/session", "/tower-sessions", 1);
            let label = id.replacen("/session", "", 1);
            (label, *ours, micro.get(&theirs_id).copied())
        })
        .collect::<Vec<_>>();
    // `load_commit/4` before `load_commit/16`.
    pairs.sort_by_key(|(label, _, _)| {
        let (group, param) = label.split_once('/').unwrap_or((label, ""));
        (group.to_owned(), param.parse::<usize>().unwrap_or(0))
    });
    pairs
}

/// Parses `RESULT name value unit note…` lines.
pub(crate) fn parse_scale(out: &str) -> Result<Scale, BoxError> {
    let rows: Scale = out
        .lines()
        .filter_map(|line| line.strip_prefix("RESULT "))
        .map(|line| {
            let mut parts = line.splitn(4, ' ');
            let (Some(name), Some(value), Some(unit)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(format!("bench-scale: a short line {line:?}").into());
            };
            Ok(ScaleRow {
                name: name.to_owned(),
                value: value.parse()?,
                unit: unit.to_owned(),
                note: parts.next().unwrap_or("").to_owned(),
            })
        })
        .collect::<Result<_, BoxError>>()?;
    if rows.is_empty() {
        return Err("bench-scale printed no RESULT line".into());
    }
    Ok(rows)
}

fn command_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map_or_else(|| "unknown".into(), |s| s.trim().to_owned())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// A target of the issue, judged on the figures.
struct Target {
    what: String,
    value: String,
    met: Option<bool>,
}

fn target(what: impl Into<String>, value: Option<(String, bool)>) -> Target {
    let (value, met) = match value {
        Some((value, met)) => (value, Some(met)),
        None => ("not measured".into(), None),
    };
    Target {
        what: what.into(),
        value,
        met,
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    Some(a? / b?)
}

fn targets(m: &Measured) -> Vec<Target> {
    let med = |v: &str, f: usize, r: &str, fig: fn(&Sample) -> Option<f64>| m.median(v, f, r, fig);
    // `ours / theirs` of one figure on `/counter` at 20 fields, met when
    // `good` says so.
    let counter_ratio = |what: &str, ours, theirs, fig, good: fn(f64) -> bool| {
        let r = ratio(
            med(ours, 20, "counter", fig),
            med(theirs, 20, "counter", fig),
        );
        target(what, r.map(|r| (format!("{r:.2}×"), good(r))))
    };
    let mut out = vec![
        counter_ratio(
            "counter on memory: CPU/request ≤ 1.2× none",
            "session-memory",
            "none",
            cpu,
            |r| r <= 1.2,
        ),
        counter_ratio(
            "counter on memory: req/s ≥ 0.85× none",
            "session-memory",
            "none",
            rps,
            |r| r >= 0.85,
        ),
        counter_ratio(
            "counter on memory: req/s ≥ 1.5× tower-memory",
            "session-memory",
            "tower-memory",
            rps,
            |r| r >= 1.5,
        ),
        counter_ratio(
            "counter on Redis: req/s ≥ 1.3× tower-redis",
            "session-redis",
            "tower-redis",
            rps,
            |r| r >= 1.3,
        ),
    ];
    // A counter request is a load and a save; a read request the same load.
    let save = med("session-redis", 20, "counter", redis_bytes)
        .zip(med("session-redis", 20, "read", redis_bytes))
        .map(|(counter, read)| counter - read);
    out.push(target(
        "counter on Redis: ≤ 150 bytes to Redis per save (counter request − read request)",
        save.map(|b| (format!("{b:.1} B"), b <= 150.0)),
    ));
    let w = med("session-redis", 20, "counter", redis_writes);
    out.push(target(
        "counter on Redis: 1 atomic write per save (a write command, a script or a MULTI block, per counter request)",
        w.map(|w| (format!("{w:.2}"), (w - 1.0).abs() < 0.01)),
    ));
    let read_writes = med("session-redis", 20, "read", redis_writes);
    let read_changes = m
        .samples
        .get(&("session-redis".to_owned(), 20, "read".to_owned()))
        .map(|s| {
            s.iter()
                .filter_map(|s| s.redis.as_ref())
                .map(|r| r.total_changes)
                .sum::<f64>()
        });
    out.push(target(
        "read on Redis: 0 writes (sent, and changes to the data)",
        read_writes.zip(read_changes).map(|(w, c)| {
            (
                format!("{w:.2} sent per request; {c:.0} changes in all rounds"),
                w == 0.0 && c == 0.0,
            )
        }),
    ));
    for variant in ["session-memory", "session-redis"] {
        let g = ratio(
            med(variant, 64, "counter", cpu),
            med(variant, 4, "counter", cpu),
        );
        out.push(target(
            format!("growth 4→64 fields, {variant}: CPU/request on counter +≤ 10%"),
            g.map(|g| (format!("{:+.1}%", (g - 1.0) * 100.0), g <= 1.10)),
        ));
    }
    let (b4, b64) = (
        med("session-redis", 4, "counter", redis_bytes),
        med("session-redis", 64, "counter", redis_bytes),
    );
    out.push(target(
        "growth 4→64 fields, session-redis: bytes to Redis per counter request not growing (≤ +5%, \
         room for the counter's digits)",
        b4.zip(b64)
            .map(|(a, b)| (format!("{a:.1} B → {b:.1} B"), b <= a * 1.05)),
    ));
    let typed = m.micro.as_ref().and_then(|micro| {
        ratio(
            micro.get("typed_read/tower-sessions").copied(),
            micro.get("typed_read/session").copied(),
        )
    });
    out.push(target(
        "micro: typed read ≥ 20× cheaper than tower-sessions' get",
        typed.map(|r| (format!("{r:.1}×"), r >= 20.0)),
    ));
    out
}

/// The whole report.
pub(crate) fn markdown(
    options: &Options,
    m: &Measured,
    chart: &Path,
    took: Duration,
) -> Result<String, BoxError> {
    let mut md = String::new();
    let now = command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = if args.is_empty() {
        "scripts/bench".to_owned()
    } else {
        format!("scripts/bench {}", args.join(" "))
    };
    writeln!(md, "# Benchmarks\n")?;
    writeln!(
        md,
        "`session` against tower-sessions 0.14 and actix-session 0.11, written by \
         `bench-run` (crate `bench/`). Regenerate with `{command}`.\n"
    )?;
    if options.quick {
        writeln!(
            md,
            "**Quick mode**: one round of one-second runs (and a tenth of the scale counts): a \
             smoke test of the harness, not figures to quote. CPU per request at one second \
             rests on few clock ticks.\n"
        )?;
    }
    writeln!(
        md,
        "- date: {now}; the run took {:.0} s",
        took.as_secs_f64()
    )?;
    writeln!(
        md,
        "- machine: {}, {} CPUs, kernel {}, {}",
        cpu_model(),
        command_line("nproc", &[]),
        command_line("uname", &["-r"]),
        command_line("rustc", &["-V"])
    )?;
    writeln!(
        md,
        "- load average before the tables were written: {}",
        std::fs::read_to_string("/proc/loadavg")
            .map(|l| l.split(' ').take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    )?;
    writeln!(
        md,
        "- chart: [benchmarks.svg]({})\n",
        chart.file_name().unwrap_or_default().to_string_lossy()
    )?;

    writeln!(md, "## Method\n")?;
    writeln!(
        md,
        "- {} interleaved round(s): each round runs every variant once, in the order of the \
         tables, so that a slow spell of the machine spreads over all of them. Figures are \
         medians over rounds, with min–max in parentheses when they differ.",
        options.rounds
    )?;
    writeln!(
        md,
        "- Each run starts `bench-server VARIANT` (single-threaded: a current-thread tokio \
         runtime, or one actix worker) pinned to CPU 0 with `taskset -c 0`, seeds {} sessions \
         through `GET /seed`, then loads `GET /counter` (read `counter`, write it plus one) and \
         `GET /read` (read it, change nothing) for {} s each with `taskset -c 1 wrk -t1 -c32 \
         --latency`, rotating the {} cookies. Any wrk error or non-2xx answer fails the run. \
         After `/counter`, the first session's counter must have grown by about requests/{} \
         (cookie-only sessions: `/counter` must answer the seeded value plus one).",
        session_bench::profile::SESSIONS,
        options.duration,
        session_bench::profile::SESSIONS,
        session_bench::profile::SESSIONS
    )?;
    writeln!(
        md,
        "- CPU per request: the server's utime + stime from `/proc/<pid>/stat` just before and \
         after each wrk run ({} ticks per second), divided by the requests wrk completed. A tick \
         is {:.0} ms, so runs of 5 s or more keep the rounding under a percent.",
        m.ticks_per_second,
        1000.0 / m.ticks_per_second
    )?;
    writeln!(
        md,
        "- Redis (a throwaway local server, flushed before each Redis variant starts): \
         `total_net_input_bytes` (bytes sent to Redis), `used_cpu_user` + `used_cpu_sys` \
         (Redis's own CPU time), `total_commands_processed` and `INFO commandstats` \
         before and after each wrk run, less what the two snapshots themselves add, per request; Redis counts the commands scripts run too. \
         `rdb_changes_since_last_save` counts changes to the data. After each timed run, \
         `MONITOR` watches 20 more requests of the same route: *sent per request* are the \
         commands the server sent, *run by scripts* those its scripts ran. Write commands are \
         the sent ones Redis flags `write` (`COMMAND INFO`), plus scripts called otherwise than \
         through their read-only variants (`fcall_ro`, `evalsha_ro`, `eval_ro`).\n"
    )?;

    writeln!(md, "## HTTP, 20 fields\n")?;
    writeln!(
        md,
        "Ratios are to the framework's variant without sessions (`none` for axum, `none-actix` \
         for actix-web). Latency is wrk's at 32 connections.\n"
    )?;
    writeln!(
        md,
        "| variant | route | req/s | vs none | CPU µs/req | vs none | p50 / p99 ms | Redis CPU µs/req | bytes to Redis/req | Redis commands/req (INFO, by name) | sent per request (MONITOR) | run by scripts | data changes/req |"
    )?;
    writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|---|---|")?;
    for variant in VARIANTS {
        for route in ROUTES {
            let Some(r) = m.spread(variant, 20, route, rps) else {
                continue;
            };
            let c = m.spread(variant, 20, route, cpu).expect("with req/s");
            let base = ceiling(variant);
            let vs = |fig: fn(&Sample) -> Option<f64>| {
                ratio(
                    m.median(variant, 20, route, fig),
                    m.median(base, 20, route, fig),
                )
                .map_or("–".into(), |r| format!("{r:.2}×"))
            };
            let (p50, p99) = (
                m.median(variant, 20, route, |s| Some(s.p50_us))
                    .unwrap_or(0.0),
                m.median(variant, 20, route, |s| Some(s.p99_us))
                    .unwrap_or(0.0),
            );
            let bytes = m
                .spread(variant, 20, route, redis_bytes)
                .map_or("–".into(), |s| s.show(1));
            let redis_cpu = m
                .spread(variant, 20, route, redis_cpu)
                .map_or("–".into(), |s| s.show(1));
            let commands = m
                .spread(variant, 20, route, redis_commands)
                .map_or("–".into(), |s| {
                    format!(
                        "{}: {}",
                        s.show(2),
                        by_command(m, variant, 20, route, |r| &r.by_name)
                    )
                });
            writeln!(
                md,
                "| {variant} | /{route} | {} | {} | {} | {} | {:.2} / {:.2} | {redis_cpu} | {bytes} | {commands} | {} | {} | {} |",
                r.show(0),
                vs(rps),
                c.show(1),
                vs(cpu),
                p50 / 1000.0,
                p99 / 1000.0,
                by_command(m, variant, 20, route, |r| &r.sent),
                by_command(m, variant, 20, route, |r| &r.scripted),
                m.spread(variant, 20, route, |s| s.redis.as_ref().map(|r| r.changes))
                    .map_or("–".into(), |s| s.show(2)),
            )?;
        }
    }

    writeln!(md, "\n## Against the peers\n")?;
    writeln!(
        md,
        "Ours divided by theirs: above 1 for req/s and below 1 for CPU and bytes is better.\n"
    )?;
    writeln!(
        md,
        "| ours / theirs | route | req/s | CPU µs/req | Redis CPU µs/req | server + Redis CPU µs/req | bytes to Redis/req |"
    )?;
    writeln!(md, "|---|---|---|---|---|---|---|")?;
    for (ours, theirs) in [
        ("session-memory", "tower-memory"),
        ("session-redis", "tower-redis"),
        ("session-postgres", "tower-postgres"),
        ("session-redis", "actix-redis"),
        ("session-cookie", "actix-cookie"),
    ] {
        for route in ROUTES {
            let r = |fig: fn(&Sample) -> Option<f64>| {
                ratio(
                    m.median(ours, 20, route, fig),
                    m.median(theirs, 20, route, fig),
                )
                .map_or("–".into(), |r| format!("{r:.2}×"))
            };
            writeln!(
                md,
                "| {ours} / {theirs} | /{route} | {} | {} | {} | {} | {} |",
                r(rps),
                r(cpu),
                r(redis_cpu),
                r(total_cpu),
                r(redis_bytes)
            )?;
        }
    }

    writeln!(md, "\n## Growth with the number of fields (`/counter`)\n")?;
    writeln!(
        md,
        "| variant | fields | req/s | CPU µs/req | Redis CPU µs/req | bytes to Redis/req | sent per request | run by scripts |"
    )?;
    writeln!(md, "|---|---|---|---|---|---|---|---|")?;
    for variant in GROWTH_VARIANTS {
        for fields in GROWTH_FIELDS {
            let Some(r) = m.spread(variant, fields, "counter", rps) else {
                continue;
            };
            let c = m
                .spread(variant, fields, "counter", cpu)
                .expect("with req/s");
            writeln!(
                md,
                "| {variant} | {fields} | {} | {} | {} | {} | {} | {} |",
                r.show(0),
                c.show(1),
                m.spread(variant, fields, "counter", redis_cpu)
                    .map_or("–".into(), |s| s.show(1)),
                m.spread(variant, fields, "counter", redis_bytes)
                    .map_or("–".into(), |s| s.show(1)),
                by_command(m, variant, fields, "counter", |r| &r.sent),
                by_command(m, variant, fields, "counter", |r| &r.scripted),
            )?;
        }
    }

    writeln!(md, "\n## Micro (criterion, in-process)\n")?;
    match &m.micro {
        None => writeln!(md, "Not run (`--skip-micro`).")?,
        Some(micro) => {
            writeln!(
                md,
                "`bench/benches/micro.rs`, median of criterion's estimates. `typed_read` and \
                 `typed_write` work on an already-loaded session; `load_commit/N` is one whole \
                 request (start, load, change `counter`, finish) on the memory store with N \
                 fields; `one_field_write` and `read_only` are the same at 20 fields, over 200 \
                 sessions.\n"
            )?;
            writeln!(
                md,
                "| benchmark | session | tower-sessions | tower-sessions / session |"
            )?;
            writeln!(md, "|---|---|---|---|")?;
            for (label, ours, theirs) in micro_pairs(micro) {
                writeln!(
                    md,
                    "| {label} | {} | {} | {} |",
                    show_ns(ours),
                    theirs.map_or("–".into(), show_ns),
                    theirs.map_or("–".into(), |t| format!("{:.1}×", t / ours)),
                )?;
            }
            if let (Some(mutex), Some(rmw)) = (
                micro.get("lock_floor/mutex"),
                micro.get("lock_floor/atomic_rmw"),
            ) {
                writeln!(
                    md,
                    "\nThe floor on this machine (`lock_floor`): an uncontended \
                     `std::sync::Mutex` lock, read and unlock takes {}, one atomic \
                     read-modify-write {}. The handle shares its session with the commit \
                     and other handles, so a typed read takes a lock.",
                    show_ns(*mutex),
                    show_ns(*rmw),
                )?;
            }
        }
    }

    writeln!(md, "\n## Scale (`bench-scale`)\n")?;
    match &m.scale {
        None => writeln!(md, "Not run (`--skip-scale`).")?,
        Some(scale) => {
            writeln!(md, "| measure | value | how |")?;
            writeln!(md, "|---|---|---|")?;
            for row in scale {
                writeln!(
                    md,
                    "| {} | {} {} | {} |",
                    row.name,
                    trim_float(row.value),
                    row.unit,
                    row.note
                )?;
            }
        }
    }

    writeln!(md, "\n## Targets (issue 9)\n")?;
    writeln!(md, "| target | measured | |")?;
    writeln!(md, "|---|---|---|")?;
    for t in targets(m) {
        let verdict = match t.met {
            Some(true) => "met",
            Some(false) => "not met",
            None => "–",
        };
        writeln!(md, "| {} | {} | {verdict} |", t.what, t.value)?;
    }
    writeln!(
        md,
        "\nWhat profiling found, what each fix bought and why the targets not met are not: \
         [bench/PROFILING.md](bench/PROFILING.md) (instruction counts by `scripts/callgrind`, \
         which do not move with the machine's load)."
    )?;
    Ok(md)
}

/// Median calls per request of each Redis command in the map `pick`
/// chooses, like `get 1.00, set 1.00`.
fn by_command(
    m: &Measured,
    variant: &str,
    fields: usize,
    route: &str,
    pick: fn(&Redis) -> &BTreeMap<String, f64>,
) -> String {
    let Some(samples) = m
        .samples
        .get(&(variant.to_owned(), fields, route.to_owned()))
    else {
        return "–".into();
    };
    let mut names: Vec<&String> = samples
        .iter()
        .filter_map(|s| s.redis.as_ref())
        .flat_map(|r| pick(r).keys())
        .collect();
    names.sort();
    names.dedup();
    let medians: BTreeMap<String, f64> = names
        .into_iter()
        .filter_map(|name| {
            let calls = m.median(variant, fields, route, |s| {
                s.redis
                    .as_ref()
                    .map(|r| pick(r).get(name).copied().unwrap_or(0.0))
            })?;
            Some((name.clone(), calls))
        })
        .collect();
    show_calls(&medians)
}

/// Calls per request by name, like `get 1.00, set 1.00`; `–` for none.
pub(crate) fn show_calls(calls: &BTreeMap<String, f64>) -> String {
    let shown: Vec<String> = calls
        .iter()
        .filter(|(_, calls)| **calls >= 0.005)
        .map(|(name, calls)| format!("{name} {calls:.2}"))
        .collect();
    if shown.is_empty() {
        "–".into()
    } else {
        shown.join(", ")
    }
}

fn show_ns(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.1} ns")
    }
}

fn trim_float(value: f64) -> String {
    if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

//! The table (terminal and markdown) and the SVG chart of a run's results.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use super::{Args, Res, arg, e};

fn f(v: &Value, k: &str) -> f64 {
    v.get(k).and_then(Value::as_f64).unwrap_or(0.0)
}

fn cpu(v: &Value, k: &str) -> f64 {
    v.pointer(&format!("/cpu/{k}"))
        .and_then(Value::as_f64)
        .unwrap_or(0.0)
}

fn num(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// What is special about a row (S3's list size and page, S5's routing figures).
fn notes(v: &Value) -> String {
    let x = v.get("extra").cloned().unwrap_or(Value::Null);
    let mut out = Vec::new();
    if let Some(t) = x.get("list_total").and_then(Value::as_u64) {
        out.push(format!(
            "page {} of {} cases",
            x.get("page").and_then(Value::as_u64).unwrap_or(1),
            t
        ));
    }
    if let Some(d) = x.get("deliveries_per_s").and_then(Value::as_f64) {
        out.push(format!(
            "{} deliveries/s; commit→receipt p50 {} ms, p99 {} ms; {} undelivered after 30 s",
            num(d),
            num(f(&x, "commit_to_receipt_p50_ms")),
            num(f(&x, "commit_to_receipt_p99_ms")),
            x.get("undelivered").and_then(Value::as_u64).unwrap_or(0)
        ));
    }
    if let Some(n) = x.get("cases_available").and_then(Value::as_u64) {
        out.push(format!(
            "{n} open cases to step (accept, start review, then suspend/resume)"
        ));
    }
    out.join("; ")
}

pub fn report(a: &Args) -> Res<()> {
    let text = std::fs::read_to_string(arg(a, "results")).map_err(e("results"))?;
    let lines: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let pgbench: BTreeMap<u64, f64> = lines
        .iter()
        .filter(|v| v["kind"] == "pgbench")
        .map(|v| (v["clients"].as_u64().unwrap_or(0), f(v, "tps")))
        .collect();
    let rows: Vec<&Value> = lines.iter().filter(|v| v["kind"] == "scenario").collect();
    let header = [
        "scenario",
        "backend",
        "clients",
        "req/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "peak RSS MB",
        "× pgbench",
        "CPU s gateway",
        "CPU s postgres",
        "CPU s redis",
        "CPU s loadgen",
        "machine busy %",
        "notes",
    ];
    let mut table: Vec<Vec<String>> = Vec::new();
    for v in &rows {
        let clients = v["clients"].as_u64().unwrap_or(0);
        let ratio = pgbench
            .get(&clients)
            .map(|t| format!("{:.3}", f(v, "rps") / t.max(1e-9)))
            .unwrap_or_else(|| "-".into());
        table.push(vec![
            v["scenario"].as_str().unwrap_or("?").to_owned(),
            v["backend"].as_str().unwrap_or("?").to_owned(),
            clients.to_string(),
            num(f(v, "rps")),
            num(f(v, "p50_ms")),
            num(f(v, "p99_ms")),
            v["errors"].as_u64().unwrap_or(0).to_string(),
            format!("{:.0}", f(v, "rss_mb")),
            ratio,
            num(cpu(v, "gateway")),
            num(cpu(v, "postgres")),
            num(cpu(v, "redis")),
            num(cpu(v, "loadgen")),
            format!("{:.0}", f(v, "machine_busy_pct")),
            notes(v),
        ]);
    }
    for (c, t) in &pgbench {
        let mut r = vec![String::new(); header.len()];
        r[0] = "pgbench (2 KB jsonb INSERT)".into();
        r[1] = "postgres".into();
        r[2] = c.to_string();
        r[3] = num(*t);
        r[8] = "1".into();
        table.push(r);
    }

    // Terminal: aligned columns (without the notes, which follow each row).
    let width = |i: usize| {
        table
            .iter()
            .map(|r| r[i].chars().count())
            .chain([header[i].chars().count()])
            .max()
            .unwrap_or(0)
    };
    let cols = header.len() - 1;
    let mut out = String::new();
    for (i, h) in header.iter().take(cols).enumerate() {
        let _ = write!(out, "{:<w$}  ", h, w = width(i));
    }
    out.push('\n');
    for r in &table {
        for (i, c) in r.iter().take(cols).enumerate() {
            let _ = write!(out, "{:<w$}  ", c, w = width(i));
        }
        out.push('\n');
        if !r[cols].is_empty() {
            let _ = writeln!(out, "    ↳ {}", r[cols]);
        }
    }
    print!("{out}");

    if let Some(md) = a.get("md") {
        let mut m = String::new();
        let _ = writeln!(m, "| {} |", header.join(" | "));
        let _ = writeln!(m, "|{}", " --- |".repeat(header.len()));
        for r in &table {
            let _ = writeln!(m, "| {} |", r.join(" | "));
        }
        std::fs::write(md, m).map_err(e("md"))?;
    }
    if let Some(svg) = a.get("svg") {
        std::fs::write(svg, chart(&rows, &pgbench)).map_err(e("svg"))?;
    }
    Ok(())
}

const COLOURS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A "nice" upper bound for an axis.
fn nice(max: f64) -> f64 {
    if max <= 0.0 {
        return 1.0;
    }
    let p = 10f64.powf(max.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * p >= max {
            return m * p;
        }
    }
    10.0 * p
}

/// Two panels, requests/s and p99 against clients (log scale), one line per scenario
/// and backend, and pgbench's transactions/s on the left.
fn chart(rows: &[&Value], pgbench: &BTreeMap<u64, f64>) -> String {
    let mut series: BTreeMap<String, Vec<(f64, f64, f64)>> = BTreeMap::new();
    for v in rows {
        let key = format!(
            "{} ({})",
            v["scenario"].as_str().unwrap_or("?"),
            v["backend"].as_str().unwrap_or("?")
        );
        let c = v["clients"].as_f64().unwrap_or(1.0);
        series
            .entry(key)
            .or_default()
            .push((c, f(v, "rps"), f(v, "p99_ms")));
    }
    if !pgbench.is_empty() {
        series.insert(
            "pgbench INSERT (postgres)".into(),
            pgbench
                .iter()
                .map(|(c, t)| (*c as f64, *t, f64::NAN))
                .collect(),
        );
    }
    for s in series.values_mut() {
        s.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    let all: Vec<&(f64, f64, f64)> = series.values().flatten().collect();
    let cmin = all
        .iter()
        .map(|p| p.0)
        .fold(f64::INFINITY, f64::min)
        .max(1.0);
    let cmax = all.iter().map(|p| p.0).fold(1.0, f64::max).max(cmin * 2.0);
    let rmax = nice(all.iter().map(|p| p.1).fold(0.0, f64::max));
    let pmax = nice(
        all.iter()
            .map(|p| p.2)
            .filter(|x| x.is_finite())
            .fold(0.0, f64::max),
    );
    let (w, ph, top, left, pw) = (1000.0, 300.0, 40.0, 70.0, 380.0);
    let legend_h = 18.0 * series.len() as f64 + 20.0;
    let h = top + ph + 50.0 + legend_h;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let x_of = |c: f64, x0: f64| {
        x0 + pw * ((c.ln() - (cmin * 0.8).ln()) / ((cmax * 1.25).ln() - (cmin * 0.8).ln()))
    };
    for (panel, (title, ymax, pick)) in [
        ("requests/s (pgbench: transactions/s)", rmax, 1usize),
        ("p99 latency, ms", pmax, 2usize),
    ]
    .into_iter()
    .enumerate()
    {
        let x0 = left + panel as f64 * (pw + 120.0);
        let y_of = |y: f64| top + ph - ph * (y / ymax);
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" font-weight="bold">{}</text>"#,
            x0,
            top - 15.0,
            esc(title)
        );
        for k in 0..=5 {
            let y = ymax * k as f64 / 5.0;
            let py = y_of(y);
            let _ = writeln!(
                s,
                r##"<line x1="{x0}" y1="{py}" x2="{}" y2="{py}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end">{}</text>"##,
                x0 + pw,
                x0 - 6.0,
                py + 4.0,
                super::report::num(y)
            );
        }
        let mut ticks: Vec<f64> = all.iter().map(|p| p.0).collect();
        ticks.sort_by(f64::total_cmp);
        ticks.dedup();
        for c in ticks {
            let px = x_of(c, x0);
            let _ = writeln!(
                s,
                r##"<line x1="{px}" y1="{top}" x2="{px}" y2="{}" stroke="#eee"/><text x="{px}" y="{}" text-anchor="middle">{c}</text>"##,
                top + ph,
                top + ph + 16.0
            );
        }
        let _ = writeln!(
            s,
            r##"<rect x="{x0}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#333"/><text x="{}" y="{}" text-anchor="middle">clients</text>"##,
            x0 + pw / 2.0,
            top + ph + 34.0
        );
        for (n, (_, pts)) in series.iter().enumerate() {
            let colour = COLOURS[n % COLOURS.len()];
            let pts: Vec<(f64, f64)> = pts
                .iter()
                .map(|p| (p.0, if pick == 1 { p.1 } else { p.2 }))
                .filter(|p| p.1.is_finite())
                .collect();
            if pts.len() > 1 {
                let path: Vec<String> = pts
                    .iter()
                    .map(|(c, y)| format!("{:.1},{:.1}", x_of(*c, x0), y_of(*y)))
                    .collect();
                let _ = writeln!(
                    s,
                    r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"/>"#,
                    path.join(" ")
                );
            }
            for (c, y) in pts {
                let _ = writeln!(
                    s,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="4" fill="{colour}"/>"#,
                    x_of(c, x0),
                    y_of(y)
                );
            }
        }
    }
    for (n, name) in series.keys().enumerate() {
        let y = top + ph + 60.0 + 18.0 * n as f64;
        let colour = COLOURS[n % COLOURS.len()];
        let _ = writeln!(
            s,
            r#"<rect x="{left}" y="{}" width="12" height="12" fill="{colour}"/><text x="{}" y="{}">{}</text>"#,
            y - 10.0,
            left + 18.0,
            y,
            esc(name)
        );
    }
    s.push_str("</svg>\n");
    s
}

//! `benchmarks.svg`: the medians of the HTTP runs in six panels.

use std::path::Path;

use plotters::prelude::*;

use crate::probe::BoxError;
use crate::report::{cpu, redis_bytes, rps, Measured, Sample};
use crate::{GROWTH_FIELDS, GROWTH_VARIANTS, VARIANTS};

const WIDTH: u32 = 1400;
const HEIGHT: u32 = 1500;

pub(crate) fn draw(m: &Measured, path: &Path) -> Result<(), BoxError> {
    let root = SVGBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(
        "session vs tower-sessions and actix-session (medians; 20 fields unless on the x axis)",
        ("sans-serif", 24),
    )?;
    let panels = root.split_evenly((3, 2));
    bars(m, &panels[0], "req/s, /counter", "counter", rps)?;
    bars(m, &panels[1], "req/s, /read", "read", rps)?;
    bars(
        m,
        &panels[2],
        "server CPU µs per request, /counter",
        "counter",
        cpu,
    )?;
    bars(
        m,
        &panels[3],
        "server CPU µs per request, /read",
        "read",
        cpu,
    )?;
    let redis: Vec<&str> = GROWTH_VARIANTS
        .into_iter()
        .filter(|v| v.ends_with("-redis"))
        .collect();
    lines(
        m,
        &panels[4],
        "bytes to Redis per /counter request vs fields",
        &redis,
        redis_bytes,
    )?;
    lines(
        m,
        &panels[5],
        "server CPU µs per /counter request vs fields",
        &GROWTH_VARIANTS,
        cpu,
    )?;
    root.present()?;
    Ok(())
}

/// One horizontal bar per variant measured at 20 fields.
fn bars(
    m: &Measured,
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    title: &str,
    route: &str,
    figure: fn(&Sample) -> Option<f64>,
) -> Result<(), BoxError> {
    let data: Vec<(&str, f64)> = VARIANTS
        .into_iter()
        .filter_map(|v| Some((v, m.median(v, 20, route, figure)?)))
        .collect();
    let max = data.iter().map(|(_, v)| *v).fold(0.0, f64::max).max(1e-9) * 1.1;
    let names: Vec<&str> = data.iter().map(|(name, _)| *name).collect();
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(130)
        .build_cartesian_2d(0.0..max, (0..names.len()).into_segmented())?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_labels(names.len())
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => names.get(*i).copied().unwrap_or("").to_owned(),
            _ => String::new(),
        })
        .draw()?;
    chart.draw_series(
        Histogram::horizontal(&chart)
            .style(BLUE.mix(0.6).filled())
            .margin(4)
            .data(data.iter().enumerate().map(|(i, (_, v))| (i, *v))),
    )?;
    Ok(())
}

/// One line per variant over the field counts it was measured at.
fn lines(
    m: &Measured,
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    title: &str,
    variants: &[&str],
    figure: fn(&Sample) -> Option<f64>,
) -> Result<(), BoxError> {
    let series: Vec<(&str, Vec<(f64, f64)>)> = variants
        .iter()
        .map(|v| {
            let points = GROWTH_FIELDS
                .into_iter()
                .filter_map(|f| Some((f as f64, m.median(v, f, "counter", figure)?)))
                .collect();
            (*v, points)
        })
        .collect();
    let max = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(_, y)| *y))
        .fold(0.0, f64::max)
        .max(1e-9)
        * 1.15;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..68.0, 0.0..max)?;
    chart.configure_mesh().x_desc("fields").x_labels(8).draw()?;
    for (i, (name, points)) in series.into_iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart.draw_series(PointSeries::of_element(
            points,
            4,
            color.filled(),
            &|c, s, st| Circle::new(c, s, st),
        ))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    Ok(())
}

//! `--report FILE.html`: the run as pictures, in one self-contained page: accepted orders per
//! second, POST and GET latency percentiles second by second, the read side's projection-lag
//! histogram and CPU per order by process group, as SVG charts drawn by plotters, above the
//! same table the terminal shows.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::{Report, Second};

const SIZE: (u32, u32) = (900, 340);
const FONT: &str = "sans-serif";
/// Matplotlib's first colours: distinct for most readers, colour-blind ones included.
const BLUE: RGBColor = RGBColor(31, 119, 180);
const ORANGE: RGBColor = RGBColor(255, 127, 14);
const GREEN: RGBColor = RGBColor(44, 160, 44);
const RED: RGBColor = RGBColor(214, 39, 40);

type ChartResult = Result<(), Box<dyn std::error::Error>>;

/// Writes the page for `report` to `path`.
pub fn write(report: &Report, path: &Path) -> anyhow::Result<()> {
    let mut figures = vec![
        figure("Accepted orders per second", |area| {
            throughput(report, area)
        })?,
        figure("Latency, second by second", |area| latency(report, area))?,
    ];
    if let Some(lag) = report.read_side_lag.as_ref().filter(|lag| lag.events > 0) {
        figures.push(figure(
            "Projection lag, every event (read side's histogram)",
            |area| lag_histogram(&lag.histogram, area),
        )?);
    }
    if !report.cpu.is_empty() {
        figures.push(figure("CPU per order, by process group", |area| {
            cpu(report, area)
        })?);
    }
    let e = &report.end_to_end;
    let page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>loadgen: {:.0} orders/s end to end</title>\
         <style>body{{font-family:{FONT};max-width:940px;margin:2em auto;color:#222}}\
         figure{{margin:1.5em 0}}figcaption{{font-weight:bold;margin-bottom:.3em}}\
         table{{border-collapse:collapse}}td{{padding:.2em .8em;border-bottom:1px solid #ddd}}\
         td:last-child{{text-align:right}}dt{{font-weight:bold}}dd{{margin:0 0 .5em 1.5em}}\
         </style></head><body>\n\
         <h1>{:.0} orders/s end to end</h1>\n<p>{} clients, {} orders accepted in {:.1} s of \
         posting, readable {:.2} s after the last one.</p>\n{}\n{}\n{LEGEND}</body></html>\n",
        e.end_to_end_per_sec,
        e.end_to_end_per_sec,
        e.concurrency,
        e.accepted,
        e.posting_secs,
        e.drain_secs,
        figures.concat(),
        html_table(&report.table()),
    );
    std::fs::write(path, page)?;
    Ok(())
}

fn figure(
    caption: &str,
    draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> ChartResult,
) -> anyhow::Result<String> {
    let mut svg = String::new();
    {
        let area = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        area.fill(&WHITE)
            .map_err(|error| anyhow::anyhow!("{caption}: {error}"))?;
        draw(&area).map_err(|error| anyhow::anyhow!("{caption}: {error}"))?;
        area.present()
            .map_err(|error| anyhow::anyhow!("{caption}: {error}"))?;
    }
    Ok(format!(
        "<figure><figcaption>{}</figcaption>{svg}</figure>\n",
        escape(caption)
    ))
}

/// What the table's words mean.
const LEGEND: &str = "<h2>Legend</h2>\n<dl>\n\
<dt>end-to-end orders/s</dt><dd>orders accepted and readable, divided by the posting time plus \
the drain</dd>\n\
<dt>drain</dt><dd>from the last POST until every accepted order was readable through the \
gateway</dd>\n\
<dt>projection lag</dt><dd>from an order's commit until a read finds it: loadgen's own probes \
(every n-th order), and the read side's histogram (every event)</dd>\n\
<dt>lag step</dt><dd>one part of that lag, from the services' histograms: commit to the \
broker's publish confirm (command side), commit to the consumer's delivery, and one batch's \
write to the read models (query side)</dd>\n\
<dt>baselines</dt><dd>each server alone with the same number of clients: the ceiling the \
stack is compared with</dd>\n\
<dt>CPU ms/order</dt><dd>CPU time of a process group while posting and draining, divided by \
the orders accepted</dd>\n\
<dt>100 ms windows</dt><dd>with --cpu-windows: the cores a process group kept busy in each \
tenth of a second while posting and draining; a window at half a core or more is a stall \
candidate for everything else on the machine</dd>\n</dl>\n";

/// The report's Markdown table as an HTML table (`**bold**` as bold).
fn html_table(markdown: &str) -> String {
    let bold = |cell: &str| {
        escape(cell)
            .split("**")
            .enumerate()
            .map(|(index, part)| match index {
                0 => part.to_owned(),
                odd if odd % 2 == 1 => format!("<strong>{part}"),
                _ => format!("</strong>{part}"),
            })
            .collect::<String>()
    };
    let rows: String = markdown
        .lines()
        .skip(2)
        .filter_map(|line| line.trim().strip_prefix('|')?.strip_suffix('|'))
        .map(|cells| {
            let cells: String = cells
                .split(" | ")
                .map(|cell| format!("<td>{}</td>", bold(cell.trim())))
                .collect();
            format!("<tr>{cells}</tr>\n")
        })
        .collect();
    format!("<table>\n<tr><th>measure</th><th>value</th></tr>\n{rows}</table>\n")
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The top of an axis: `highest` with a tenth of room, and never an empty range.
fn headroom(highest: f64) -> f64 {
    (highest * 1.1).max(1.0)
}

/// The top of a line chart's y axis: room above the lines for the legend.
fn legend_room(highest: f64) -> f64 {
    (highest * 1.45).max(1.0)
}

fn whole(value: &f64) -> String {
    format!("{value:.0}")
}

fn throughput(report: &Report, area: &DrawingArea<SVGBackend, Shift>) -> ChartResult {
    let seconds = &report.end_to_end.timeline;
    let last = seconds.last().map_or(1, |second| second.at);
    let highest = seconds.iter().map(|s| s.accepted).max().unwrap_or(0);
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0..last, 0.0..legend_room(highest as f64))?;
    chart
        .configure_mesh()
        .light_line_style(WHITE)
        .x_desc("seconds of posting")
        .y_desc("orders/s")
        .y_label_formatter(&whole)
        .label_style((FONT, 13))
        .draw()?;
    chart
        .draw_series(LineSeries::new(
            seconds.iter().map(|s| (s.at, s.accepted as f64)),
            BLUE.stroke_width(2),
        ))?
        .label("accepted")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], BLUE.stroke_width(2)));
    let end_to_end = report.end_to_end.end_to_end_per_sec;
    chart
        .draw_series(LineSeries::new(
            [(0, end_to_end), (last, end_to_end)],
            ORANGE.stroke_width(1),
        ))?
        .label("end to end, whole run")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], ORANGE));
    legend(&mut chart)
}

/// One line of the latency chart: how many were timed that second, and the percentile in ms.
type PickLatency = fn(&Second) -> (u64, f64);

fn latency(report: &Report, area: &DrawingArea<SVGBackend, Shift>) -> ChartResult {
    let seconds = &report.end_to_end.timeline;
    let last = seconds.last().map_or(1, |second| second.at);
    let highest = seconds
        .iter()
        .map(|s| s.post_latency.p99_ms.max(s.get_latency.p99_ms))
        .fold(0.0, f64::max);
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0..last, 0.0..legend_room(highest))?;
    chart
        .configure_mesh()
        .light_line_style(WHITE)
        .x_desc("seconds of posting")
        .y_desc("ms")
        .y_label_formatter(&whole)
        .label_style((FONT, 13))
        .draw()?;
    let lines: [(&str, RGBColor, PickLatency); 4] = [
        ("POST p50", BLUE, |s| {
            (s.post_latency.count, s.post_latency.p50_ms)
        }),
        ("POST p99", ORANGE, |s| {
            (s.post_latency.count, s.post_latency.p99_ms)
        }),
        ("GET p50", GREEN, |s| {
            (s.get_latency.count, s.get_latency.p50_ms)
        }),
        ("GET p99", RED, |s| {
            (s.get_latency.count, s.get_latency.p99_ms)
        }),
    ];
    for (label, colour, value) in lines {
        chart
            .draw_series(LineSeries::new(
                seconds.iter().filter_map(|s| {
                    let (count, ms) = value(s);
                    (count > 0).then_some((s.at, ms))
                }),
                colour.stroke_width(2),
            ))?
            .label(label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], colour.stroke_width(2)));
    }
    legend(&mut chart)
}

fn lag_histogram(histogram: &[(f64, u64)], area: &DrawingArea<SVGBackend, Shift>) -> ChartResult {
    // From the first bucket with events to the last, so that the bars fill the chart.
    let first = histogram.iter().position(|(_, n)| *n > 0).unwrap_or(0);
    let last = histogram.iter().rposition(|(_, n)| *n > 0).unwrap_or(0);
    let shown = &histogram[first..=last.max(first)];
    let highest = shown.iter().map(|(_, n)| *n).max().unwrap_or(0);
    let label = |index: &usize| {
        shown.get(*index).map_or_else(String::new, |(bound, _)| {
            if bound.is_finite() {
                format!("≤{bound} ms")
            } else {
                "more".to_owned()
            }
        })
    };
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(
            (0..shown.len() - 1).into_segmented(),
            0..headroom(highest as f64) as u64,
        )?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(WHITE)
        .x_desc("projection lag, by bucket")
        .x_labels(shown.len() + 1)
        .x_label_formatter(&|segment| match segment {
            SegmentValue::CenterOf(index) => label(index),
            _ => String::new(),
        })
        .y_desc("events")
        .label_style((FONT, 12))
        .draw()?;
    chart.draw_series(
        Histogram::vertical(&chart)
            .style(BLUE.filled())
            .margin(4)
            .data(shown.iter().enumerate().map(|(index, (_, n))| (index, *n))),
    )?;
    Ok(())
}

fn cpu(report: &Report, area: &DrawingArea<SVGBackend, Shift>) -> ChartResult {
    // Most first, at the top.
    let groups: Vec<_> = report.cpu.iter().rev().collect();
    let highest = groups.iter().map(|g| g.ms_per_order).fold(0.0, f64::max);
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(170)
        .build_cartesian_2d(
            0.0..headroom(highest),
            (0..groups.len() - 1).into_segmented(),
        )?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .light_line_style(WHITE)
        .y_labels(groups.len() + 1)
        .y_label_formatter(&|segment| match segment {
            SegmentValue::CenterOf(index) => groups
                .get(*index)
                .map_or_else(String::new, |group| group.group.clone()),
            _ => String::new(),
        })
        .x_desc("CPU ms per order")
        .label_style((FONT, 12))
        .draw()?;
    chart.draw_series(
        Histogram::horizontal(&chart)
            .style(ORANGE.filled())
            .margin(4)
            .data(
                groups
                    .iter()
                    .enumerate()
                    .map(|(index, group)| (index, group.ms_per_order)),
            ),
    )?;
    Ok(())
}

fn legend<'a, X: Ranged, Y: Ranged>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
) -> ChartResult {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font((FONT, 13))
        .draw()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_becomes_html_rows_with_bold_and_escaped_cells() {
        let html = html_table(
            "| measure | value |\n| --- | ---: |\n| **end-to-end orders/s** (readable) | **12** |\n\
             | GET /orders/{id} p50 <1 | 2 |\n",
        );
        assert!(html.contains(
            "<tr><td><strong>end-to-end orders/s</strong> (readable)</td><td><strong>12</strong></td></tr>"
        ), "{html}");
        assert!(
            html.contains("<td>GET /orders/{id} p50 &lt;1</td><td>2</td>"),
            "{html}"
        );
        assert!(!html.contains("---"), "{html}");
    }
}

//! The PNG chart of one run: for every figure that native has, one bar per other runner with
//! its ratio to native on a log scale (1 is native; the scale says nothing about which side
//! is better, the unit in the label does). Drawn with plotters' bitmap backend; text needs a
//! TrueType font, taken from the system's font directory (Debian's `fonts-dejavu-core`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::figures::Figure;
use crate::report::{number, ratio};
use crate::runner::Runner;

/// Where a sans-serif TrueType font usually is.
const FONT_FILES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

const FONT: &str = "sans-serif";
const WIDTH: u32 = 1400;
const ROW_PIXELS: u32 = 22;

/// One bar: the figure's label, the runner, its ratio to native.
struct Bar {
    label: String,
    runner: Runner,
    ratio: f64,
}

pub fn write_png(figures: &[Figure], path: &Path) -> Result<()> {
    register_font()?;
    let bars: Vec<Bar> = figures
        .iter()
        .flat_map(|figure| {
            [Runner::Bwrap, Runner::Qemu, Runner::Litebox]
                .into_iter()
                .filter_map(|runner| {
                    let ratio = ratio(figure, runner).filter(|r| *r > 0.0)?;
                    let label = format!("{} [{}]", figure.name, figure.unit);
                    Some(Bar {
                        label,
                        runner,
                        ratio,
                    })
                })
        })
        .collect();
    if bars.is_empty() {
        bail!("no figure has both a native and another runner's value");
    }

    // Powers of ten around every ratio and 1.
    let smallest = bars.iter().map(|b| b.ratio).fold(1.0, f64::min);
    let largest = bars.iter().map(|b| b.ratio).fold(1.0, f64::max);
    let low = 10f64.powf(smallest.log10().floor() - 0.3);
    let high = 10f64.powf(largest.log10().ceil() + 0.3);

    let rows = bars.len();
    let height = u32::try_from(rows)? * ROW_PIXELS + 120;
    let root = BitMapBackend::new(path, (WIDTH, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let title = "litebox-vmm benchmarks: each runner's median / native's median (log scale)";
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 20))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(560)
        .build_cartesian_2d((low..high).log_scale(), 0.0..rows as f64)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .disable_y_axis()
        .x_label_style((FONT, 13))
        .x_label_formatter(&|x| format!("×{}", number(*x)))
        .draw()?;

    // Bars from the top in the figures' order, each labelled with its figure and value.
    for runner in [Runner::Bwrap, Runner::Qemu, Runner::Litebox] {
        let color = colour(runner);
        let mine = bars
            .iter()
            .enumerate()
            .filter(|(_, bar)| bar.runner == runner);
        chart
            .draw_series(mine.map(|(index, bar)| {
                let y = (rows - 1 - index) as f64;
                Rectangle::new([(1.0, y + 0.15), (bar.ratio, y + 0.85)], color.filled())
            }))?
            .label(runner.name())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
    }
    let label_style =
        TextStyle::from((FONT, 13).into_font()).pos(Pos::new(HPos::Right, VPos::Center));
    let value_style =
        TextStyle::from((FONT, 12).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    for (index, bar) in bars.iter().enumerate() {
        let y = (rows - 1 - index) as f64 + 0.5;
        let (left, pixel_y) = chart.backend_coord(&(low, y));
        root.draw(&Text::new(
            bar.label.clone(),
            (left - 8, pixel_y),
            label_style.clone(),
        ))?;
        // The value goes past the bar's far end: right of it, or left of a bar below 1.
        let (end, _) = chart.backend_coord(&(bar.ratio, y));
        let value = format!("×{}", number(bar.ratio));
        let (x, style) = if bar.ratio >= 1.0 {
            (end + 4, value_style.clone())
        } else {
            (
                end - 4,
                value_style.pos(Pos::new(HPos::Right, VPos::Center)),
            )
        };
        root.draw(&Text::new(value, (x, pixel_y), style))?;
    }
    chart.draw_series(std::iter::once(PathElement::new(
        vec![(1.0, 0.0), (1.0, rows as f64)],
        BLACK.stroke_width(2),
    )))?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .label_font((FONT, 14))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    root.present()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn colour(runner: Runner) -> RGBColor {
    match runner {
        Runner::Native => RGBColor(120, 120, 120),
        Runner::Bwrap => RGBColor(66, 133, 244),
        Runner::Qemu => RGBColor(244, 160, 0),
        Runner::Litebox => RGBColor(200, 40, 40),
    }
}

/// Registers the first system TrueType font found as plotters' `sans-serif`.
fn register_font() -> Result<()> {
    let Some(file) = FONT_FILES
        .iter()
        .map(PathBuf::from)
        .find(|path| path.exists())
    else {
        bail!(
            "no TrueType font in {} (install fonts-dejavu-core)",
            FONT_FILES.join(", ")
        );
    };
    let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
    // plotters keeps the font for the rest of the process.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font(FONT, FontStyle::Normal, bytes)
        .map_err(|_| anyhow::anyhow!("{} is not a usable TrueType font", file.display()))
}

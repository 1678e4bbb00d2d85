//! A picture of the arena: one self-contained SVG of where every region
//! lies, what is free and what is stale, and the moves so far.
//!
//! The arena is drawn as a grid of [`ROWS`] rows of [`COLUMNS`] cells,
//! each cell an equal share of its address space, read like text: left
//! to right, top to bottom. A cell takes the colour of the kind of region
//! that holds most of its bytes (stale bytes count as one kind), its
//! opacity the share of it that is in use, so a region of a few hundred
//! bytes still shows in a cell of megabytes. That aggregation is what
//! keeps a map of a million regions legible and its file small: runs of
//! like cells in a row are one rectangle, so the SVG grows with what the
//! arena holds, not with the number of regions. The largest free range
//! is outlined, and the last moves are drawn as arrows from where a
//! region was to where it went. A legend gives each kind's regions and
//! bytes, and the figures: capacity, live, stale and free bytes,
//! fragmentation, the largest free range and the moves.
//!
//! Owners (the processes regions belong to) are drawn too: the bottom
//! third of a cell takes the colour of the owner holding most of its
//! bytes, if that owner is one of the [`OWNERS_SHOWN`] holding the most
//! in the whole arena (each named in the legend), grey for any other.

use std::fmt::Write;

use carat_guest_runtime::RegionKind;
use carat_guest_runtime::regions::NO_OWNER;

/// Rows of the grid.
pub const ROWS: usize = 64;
/// Cells in a row.
pub const COLUMNS: usize = 512;
const CELL_WIDTH: f64 = 2.0;
const CELL_HEIGHT: f64 = 9.0;
const MARGIN: f64 = 20.0;
const LEGEND_HEIGHT: f64 = 150.0 + OWNERS_SHOWN as f64 / 2.0 * 18.0;
/// Of a cell's height, what the owner strip at its bottom takes.
const OWNER_STRIP: f64 = 3.0;
/// Owners given colours of their own: those holding the most bytes.
pub const OWNERS_SHOWN: usize = 8;
const OWNER_COLOURS: [&str; OWNERS_SHOWN] = [
    "#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#17becf",
];
const OTHER_OWNERS_COLOUR: &str = "#c8c8c8";
/// Most moves drawn as arrows (the latest).
pub const MAX_ARROWS: usize = 64;

/// What the arena holds at one moment, as [`render_svg`] draws it.
#[derive(Clone, Debug, Default)]
pub struct ArenaPicture {
    pub capacity: usize,
    /// Live regions: offset, kind, length, owner (a process id, or
    /// [`NO_OWNER`]); slab blocks each on their own.
    pub regions: Vec<(usize, RegionKind, usize, u32)>,
    /// Free ranges: offset, length.
    pub free: Vec<(usize, usize)>,
    /// Ranges kept for memories, neither live nor free: memories' rooms to
    /// grow and vacancies (freed memories' ranges): offset, length.
    pub kept: Vec<(usize, usize)>,
    /// Stale ranges (free, not yet zeroed): offset, length.
    pub stale: Vec<(usize, usize)>,
    /// The latest moves, oldest first: from, to, length, kind.
    pub moves: Vec<(usize, usize, usize, RegionKind)>,
    /// Every move since the arena was made.
    pub moves_total: u64,
}

/// A cell's share of each kind, of stale bytes, and of the owners shown
/// (the last entry: every other owner).
#[derive(Clone, Copy, Default)]
struct Cell {
    by_kind: [usize; RegionKind::COUNT],
    stale: usize,
    by_owner: [usize; OWNERS_SHOWN + 1],
}

const KIND_COLOURS: [(RegionKind, &str); RegionKind::COUNT] = [
    (RegionKind::LinearMemory, "#2f6fdf"),
    (RegionKind::ControlBlock, "#e8a01c"),
    (RegionKind::Table, "#2aa876"),
    (RegionKind::Stack, "#c2379b"),
];
const STALE_COLOUR: &str = "#9a9a9a";
const BACKGROUND: &str = "#f4f4f0";

/// Bytes in a human unit.
fn bytes(n: usize) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Adds `len` bytes at `offset` to the cells they cover, through `add`.
fn spread(
    cells: &mut [Cell],
    cell_bytes: usize,
    offset: usize,
    len: usize,
    mut add: impl FnMut(&mut Cell, usize),
) {
    let end = offset.saturating_add(len);
    let mut at = offset;
    while at < end {
        let index = at / cell_bytes;
        let Some(cell) = cells.get_mut(index) else {
            return;
        };
        let cell_end = (index + 1) * cell_bytes;
        let n = end.min(cell_end) - at;
        add(cell, n);
        at += n;
    }
}

/// The centre of the cell holding `offset`, in picture coordinates.
fn centre(offset: usize, cell_bytes: usize) -> (f64, f64) {
    let index = (offset / cell_bytes).min(ROWS * COLUMNS - 1);
    let (row, column) = (index / COLUMNS, index % COLUMNS);
    (
        MARGIN + (column as f64 + 0.5) * CELL_WIDTH,
        MARGIN + (row as f64 + 0.5) * CELL_HEIGHT,
    )
}

/// Draws `picture` as one SVG document, owners shown as `pid N`.
pub fn render_svg(picture: &ArenaPicture) -> String {
    render_svg_named(picture, &|_| None)
}

/// [`render_svg`], owners that `name_of` names (a launch's processes)
/// shown by their names.
pub fn render_svg_named(picture: &ArenaPicture, name_of: &dyn Fn(u32) -> Option<String>) -> String {
    let cell_bytes = picture.capacity.div_ceil(ROWS * COLUMNS).max(1);
    let mut cells = vec![Cell::default(); ROWS * COLUMNS];
    let mut counts = [(0usize, 0usize); RegionKind::COUNT];
    let owners = top_owners(&picture.regions);
    for &(offset, kind, len, owner) in &picture.regions {
        counts[kind as usize].0 += 1;
        counts[kind as usize].1 += len;
        let shown = owners.iter().position(|o| o.0 == owner);
        spread(&mut cells, cell_bytes, offset, len, |c, n| {
            c.by_kind[kind as usize] += n;
            if owner != NO_OWNER {
                c.by_owner[shown.unwrap_or(OWNERS_SHOWN)] += n;
            }
        });
    }
    for &(offset, len) in &picture.stale {
        spread(&mut cells, cell_bytes, offset, len, |c, n| c.stale += n);
    }
    let live: usize = counts.iter().map(|c| c.1).sum();
    let stale: usize = picture.stale.iter().map(|s| s.1).sum();
    let free: usize = picture.free.iter().map(|f| f.1).sum();
    let kept: usize = picture.kept.iter().map(|k| k.1).sum();
    let largest = picture.free.iter().copied().max_by_key(|f| f.1);
    let fragmentation = match largest {
        Some((_, len)) if free > 0 => 1.0 - len as f64 / free as f64,
        _ => 0.0,
    };

    let width = 2.0 * MARGIN + COLUMNS as f64 * CELL_WIDTH;
    let map_height = ROWS as f64 * CELL_HEIGHT;
    let height = 2.0 * MARGIN + map_height + LEGEND_HEIGHT;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">
<title>carat-vm arena map: {regions} regions, {live} live</title>
<defs><marker id="head" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#d62828"/></marker></defs>
<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>
<rect x="{MARGIN}" y="{MARGIN}" width="{mw}" height="{map_height}" fill="{BACKGROUND}" stroke="#cccccc"/>
<g id="cells">
"##,
        regions = picture.regions.len(),
        live = bytes(live),
        mw = COLUMNS as f64 * CELL_WIDTH,
    );
    for row in 0..ROWS {
        let mut column = 0;
        while column < COLUMNS {
            let Some(look) = look_of(&cells[row * COLUMNS + column], cell_bytes) else {
                column += 1;
                continue;
            };
            let run = cells[row * COLUMNS + column..(row + 1) * COLUMNS]
                .iter()
                .take_while(|c| look_of(c, cell_bytes) == Some(look))
                .count();
            let _ = writeln!(
                svg,
                r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{CELL_HEIGHT}" fill="{}" fill-opacity="{:.2}"/>"#,
                MARGIN + column as f64 * CELL_WIDTH,
                MARGIN + row as f64 * CELL_HEIGHT,
                run as f64 * CELL_WIDTH,
                look.0,
                f64::from(look.1) / 10.0,
            );
            column += run;
        }
    }
    svg.push_str("</g>\n<g id=\"owners\">\n");
    for row in 0..ROWS {
        let mut column = 0;
        while column < COLUMNS {
            let Some(colour) = owner_colour(&cells[row * COLUMNS + column]) else {
                column += 1;
                continue;
            };
            let run = cells[row * COLUMNS + column..(row + 1) * COLUMNS]
                .iter()
                .take_while(|c| owner_colour(c) == Some(colour))
                .count();
            let _ = writeln!(
                svg,
                r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{OWNER_STRIP}" fill="{colour}"/>"#,
                MARGIN + column as f64 * CELL_WIDTH,
                MARGIN + (row + 1) as f64 * CELL_HEIGHT - OWNER_STRIP,
                run as f64 * CELL_WIDTH,
            );
            column += run;
        }
    }
    svg.push_str("</g>\n");
    if let Some((offset, len)) = largest {
        // The largest free range: its first and last cells, outlined.
        let (x0, y0) = centre(offset, cell_bytes);
        let (x1, y1) = centre(offset + len.saturating_sub(1), cell_bytes);
        let _ = writeln!(
            svg,
            r##"<g id="largest-free"><circle cx="{x0:.1}" cy="{y0:.1}" r="4" fill="none" stroke="#111" stroke-width="1.5"/><circle cx="{x1:.1}" cy="{y1:.1}" r="4" fill="none" stroke="#111" stroke-width="1.5"/><line x1="{x0:.1}" y1="{y0:.1}" x2="{x1:.1}" y2="{y1:.1}" stroke="#111" stroke-dasharray="3,3"/></g>"##
        );
    }
    svg.push_str("<g id=\"moves\">\n");
    let first_arrow = picture.moves.len().saturating_sub(MAX_ARROWS);
    for &(from, to, len, kind) in &picture.moves[first_arrow..] {
        let (x0, y0) = centre(from, cell_bytes);
        let (x1, y1) = centre(to, cell_bytes);
        let bend = ((x1 - x0).abs() + (y1 - y0).abs()).min(80.0) / 2.0 + 6.0;
        let _ = writeln!(
            svg,
            r##"<path d="M{x0:.1},{y0:.1} Q{:.1},{:.1} {x1:.1},{y1:.1}" fill="none" stroke="#d62828" stroke-opacity="0.7" marker-end="url(#head)"><title>{} of {} moved from {from:#x} to {to:#x}</title></path>"##,
            (x0 + x1) / 2.0,
            (y0 + y1) / 2.0 - bend,
            kind,
            bytes(len),
        );
    }
    svg.push_str("</g>\n<g id=\"legend\">\n");
    let mut y = MARGIN + map_height + 22.0;
    let mut x = MARGIN;
    for (kind, colour) in KIND_COLOURS {
        let (count, held) = counts[kind as usize];
        let _ = writeln!(
            svg,
            r#"<rect x="{x}" y="{:.1}" width="12" height="12" fill="{colour}"/><text x="{:.1}" y="{y:.1}" class="kind">{kind}: {count} regions, {}</text>"#,
            y - 10.0,
            x + 16.0,
            bytes(held),
        );
        x += 250.0;
        if x + 250.0 > width {
            x = MARGIN;
            y += 18.0;
        }
    }
    y += 18.0;
    let _ = writeln!(
        svg,
        r#"<rect x="{MARGIN}" y="{:.1}" width="12" height="12" fill="{STALE_COLOUR}"/><text x="{:.1}" y="{y:.1}">stale (freed or left by a move, zeroed when reused): {}</text>"#,
        y - 10.0,
        MARGIN + 16.0,
        bytes(stale),
    );
    for (i, &(owner, regions, held)) in owners.iter().enumerate() {
        if i % 2 == 0 {
            y += 18.0;
        }
        let x = MARGIN + (i % 2) as f64 * 380.0;
        let name = name_of(owner).map_or(format!("pid {owner}"), |name| {
            format!("{name} (pid {owner})")
        });
        let _ = writeln!(
            svg,
            r#"<rect x="{x}" y="{:.1}" width="12" height="4" fill="{}"/><text x="{:.1}" y="{y:.1}" class="owner">{}: {regions} regions, {}</text>"#,
            y - 5.0,
            OWNER_COLOURS[i],
            x + 16.0,
            escape(&name),
            bytes(held),
        );
    }
    let lines = [
        format!(
            "capacity {}, one cell {}; live {} in {} regions; free {}; kept for memories to grow into or reuse {}",
            bytes(picture.capacity),
            bytes(cell_bytes),
            bytes(live),
            picture.regions.len(),
            bytes(free),
            bytes(kept),
        ),
        format!(
            "fragmentation {:.3} (1 - largest free / free); largest free range {} at {:#x} (circled)",
            fragmentation,
            bytes(largest.map_or(0, |l| l.1)),
            largest.map_or(0, |l| l.0),
        ),
        format!(
            "moves so far {} (the last {} drawn as arrows); a cell's colour is its main kind, its opacity the share in use, its strip its main owner (grey: others)",
            picture.moves_total,
            picture.moves.len() - first_arrow,
        ),
    ];
    for line in lines {
        y += 18.0;
        let _ = writeln!(svg, r#"<text x="{MARGIN}" y="{y:.1}">{line}</text>"#);
    }
    svg.push_str("</g>\n</svg>\n");
    svg
}

/// The owners holding the most bytes, most first, at most
/// [`OWNERS_SHOWN`]: owner, regions, bytes. [`NO_OWNER`] is not one.
fn top_owners(regions: &[(usize, RegionKind, usize, u32)]) -> Vec<(u32, usize, usize)> {
    let mut by_owner: std::collections::HashMap<u32, (usize, usize)> = Default::default();
    for &(_, _, len, owner) in regions.iter().filter(|r| r.3 != NO_OWNER) {
        let entry = by_owner.entry(owner).or_default();
        entry.0 += 1;
        entry.1 += len;
    }
    let mut owners: Vec<(u32, usize, usize)> = by_owner
        .into_iter()
        .map(|(o, (n, held))| (o, n, held))
        .collect();
    owners.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
    owners.truncate(OWNERS_SHOWN);
    owners
}

/// The colour of a cell's owner strip: its main owner's, grey for an
/// owner not shown; `None` when nobody owns any of it.
fn owner_colour(cell: &Cell) -> Option<&'static str> {
    let (main, held) = cell
        .by_owner
        .iter()
        .enumerate()
        .max_by_key(|&(i, &n)| (n, std::cmp::Reverse(i)))?;
    match (*held, OWNER_COLOURS.get(main)) {
        (0, _) => None,
        (_, Some(colour)) => Some(colour),
        (_, None) => Some(OTHER_OWNERS_COLOUR),
    }
}

/// Text made safe inside an SVG element.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// How a cell is drawn: its colour and its opacity in tenths; `None` for
/// a cell wholly free.
fn look_of(cell: &Cell, cell_bytes: usize) -> Option<(&'static str, u8)> {
    let used: usize = cell.by_kind.iter().sum::<usize>() + cell.stale;
    if used == 0 {
        return None;
    }
    let (main, main_bytes) = KIND_COLOURS
        .iter()
        .map(|&(kind, colour)| (colour, cell.by_kind[kind as usize]))
        .max_by_key(|&(_, n)| n)
        .expect("kinds");
    let colour = if cell.stale > main_bytes {
        STALE_COLOUR
    } else {
        main
    };
    // At least 0.4, so that a small region shows in a large cell.
    let share = used as f64 / cell_bytes as f64;
    let tenths = (4.0 + 6.0 * share).round().min(10.0) as u8;
    Some((colour, tenths))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_aggregate_regions_and_runs_merge() {
        let capacity = ROWS * COLUMNS * 4096;
        let picture = ArenaPicture {
            capacity,
            // 10,000 control blocks of ten owners, then one owner's
            // memory.
            regions: (0..10_000)
                .map(|i| (i * 64, RegionKind::ControlBlock, 64, 1 + i as u32 % 10))
                .chain([(capacity / 2, RegionKind::LinearMemory, capacity / 4, 42)])
                .collect(),
            free: vec![(10_000 * 64, capacity / 2 - 10_000 * 64)],
            stale: vec![],
            kept: vec![],
            moves: vec![(0, capacity / 2, 64, RegionKind::ControlBlock)],
            moves_total: 1,
        };
        let svg = render_svg_named(&picture, &|o| (o == 42).then(|| "big <one>".to_string()));
        // 10,000 control blocks fill 157 cells; the memory a quarter of
        // the grid: a handful of rectangles, not thousands.
        let rects = svg.matches("<rect").count();
        assert!(rects < 200, "{rects} rectangles");
        assert!(svg.contains("control block: 10000 regions, 625.0 KiB"));
        assert!(svg.contains("linear memory: 1 regions"));
        assert!(svg.contains("moves so far 1"));
        assert!(svg.contains("moved from 0x0 to"));
        // The largest owner first, named and escaped; eight owners shown.
        assert!(svg.contains("big &lt;one&gt; (pid 42): 1 regions, 32.0 MiB"));
        assert_eq!(svg.matches(r#"class="owner""#).count(), OWNERS_SHOWN);
        // The memory's strip is its owner's colour; the blocks' cells,
        // shared by ten owners of whom seven are shown, take a shown
        // owner's colour or grey.
        let strips = &svg[svg.find(r#"<g id="owners">"#).unwrap()..];
        assert!(strips.contains(OWNER_COLOURS[0]));
        assert!(strips.contains("<rect"));
        assert_eq!(bytes(1536), "1.5 KiB");
    }
}

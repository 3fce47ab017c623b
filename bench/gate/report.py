"""The benchmark's HTML page: latency percentile curves and throughput bars as
inline SVG, and the printed tables; no scripts, styles or fonts from the network."""
import glob
import html
import math
import os

COLORS = {"c shm": "#1f77b4", "c uds": "#9ecae1", "java shm": "#d62728", "java uds": "#ff9896"}
W, H, PAD = 640, 300, 56


def read_hgrm(path):
    """(1/(1-p), value in us) points of an .hgrm file, the 100% line excluded."""
    pts = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 4 and not line.startswith("#"):
                try:
                    pts.append((float(parts[3]), float(parts[0])))
                except ValueError:
                    continue  # the header line
    return pts


def log_axis(lo, hi):
    lo, hi = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    return lo, max(hi, lo + 1)


def svg_curves(title, series):
    """series: {label: [(x, y)]}, both axes log10."""
    xs = [x for pts in series.values() for x, _ in pts]
    ys = [y for pts in series.values() for _, y in pts if y > 0]
    if not xs or not ys:
        return ""
    x0, x1 = log_axis(1, max(xs))
    y0, y1 = log_axis(min(ys), max(ys))

    def px(x):
        return PAD + (math.log10(x) - x0) / (x1 - x0) * (W - 2 * PAD)

    def py(y):
        return H - PAD + 20 - (math.log10(max(y, 10 ** y0)) - y0) / (y1 - y0) * (H - 2 * PAD)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-size="11" font-family="sans-serif">',
           f'<text x="{W / 2}" y="16" text-anchor="middle" font-size="13">{html.escape(title)}</text>']
    for e in range(x0, x1 + 1):
        p = 100 - 100 / 10 ** e
        label = f"{p:g}%" if e else "0%"
        out.append(f'<line x1="{px(10 ** e):.1f}" y1="{py(10 ** y0):.1f}" x2="{px(10 ** e):.1f}" y2="{py(10 ** y1):.1f}" stroke="#ddd"/>'
                   f'<text x="{px(10 ** e):.1f}" y="{H - 18}" text-anchor="middle">{label}</text>')
    for e in range(y0, y1 + 1):
        v = 10 ** e
        label = f"{v / 1000:g} ms" if v >= 1000 else f"{v:g} us" if v >= 1 else f"{v * 1000:g} ns"
        out.append(f'<line x1="{PAD}" y1="{py(v):.1f}" x2="{W - PAD}" y2="{py(v):.1f}" stroke="#ddd"/>'
                   f'<text x="{PAD - 4}" y="{py(v) + 4:.1f}" text-anchor="end">{label}</text>')
    out.append(f'<text x="{W / 2}" y="{H - 4}" text-anchor="middle">percentile</text>')
    for i, (label, pts) in enumerate(series.items()):
        color = COLORS.get(" ".join(label.split()[:2]), "#555")
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts if x >= 1)
        out.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{path}"/>')
        out.append(f'<rect x="{PAD + 8}" y="{28 + i * 14}" width="10" height="10" fill="{color}"/>'
                   f'<text x="{PAD + 22}" y="{37 + i * 14}">{html.escape(label)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def svg_bars(title, bars):
    """bars: [(label, value msgs/s, color)], log scale."""
    if not bars:
        return ""
    row, left = 18, 190
    height = 40 + row * len(bars) + 24
    v0, v1 = log_axis(min(v for _, v, _ in bars), max(v for _, v, _ in bars))

    def px(v):
        return left + (math.log10(v) - v0) / (v1 - v0) * (W - left - 20)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" font-size="11" font-family="sans-serif">',
           f'<text x="{W / 2}" y="16" text-anchor="middle" font-size="13">{html.escape(title)}</text>']
    for e in range(v0, v1 + 1):
        out.append(f'<line x1="{px(10 ** e):.1f}" y1="28" x2="{px(10 ** e):.1f}" y2="{height - 20}" stroke="#ddd"/>'
                   f'<text x="{px(10 ** e):.1f}" y="{height - 6}" text-anchor="middle">1e{e}</text>')
    for i, (label, v, color) in enumerate(bars):
        y = 32 + i * row
        out.append(f'<text x="{left - 6}" y="{y + 11}" text-anchor="end">{html.escape(label)}</text>'
                   f'<rect x="{left}" y="{y}" width="{max(px(v) - left, 1):.1f}" height="{row - 4}" fill="{color}"/>'
                   f'<text x="{px(v) + 4:.1f}" y="{y + 11}">{v / 1e6:.3g} M/s</text>')
    out.append("</svg>")
    return "\n".join(out)


def write(path, results, text, d):
    parts = []
    sizes = sorted({f["size"] for f in results["figures"] if f["group"] == "latency"})
    for s in sizes:
        series = {}
        for f in sorted(glob.glob(os.path.join(d, f"rtt-*-{s}.hgrm"))):
            _, lang, transport, _ = os.path.basename(f)[:-5].split("-", 3)
            series[f"{lang} {transport}"] = read_hgrm(f)
        parts.append(svg_curves(f"round-trip latency by percentile, {s} B payload (back to back)", series))
    rate = {os.path.basename(f)[4:-5]: read_hgrm(f) for f in sorted(glob.glob(os.path.join(d, "rtt-*-rate*.hgrm")))}
    if rate:
        parts.append(svg_curves("round-trip latency at a fixed rate (coordinated omission corrected)",
                                {k.replace("-", " "): v for k, v in rate.items()}))
    tput = [f for f in results["figures"] if f["group"] == "throughput" and f["metric"] == "msgs_per_s"]
    for s in sorted({f["size"] for f in tput}):
        bars = [(f"{f['lang']} {f['transport']} {f['api']} x{f['producers']}", f["value"],
                 COLORS.get(f"{f['lang']} {f['transport']}", "#555")) for f in tput if f["size"] == s]
        parts.append(svg_bars(f"one-way throughput, {s} B messages (messages/s, log scale)", bars))
    m = results["machine"]
    page = ["<!DOCTYPE html>", '<html><head><meta charset="utf-8"><title>shmx benchmark</title></head>',
            '<body style="font-family:sans-serif;max-width:960px;margin:auto">',
            f"<h1>shmx benchmark ({html.escape(results['suite'])})</h1>",
            f"<p>{html.escape(m['cpu_model'])}, {m['cores']} cores, kernel {html.escape(m['kernel'])}, "
            f"{html.escape(m['date'])}. Every figure, with the command that produced it, is in results.json.</p>"]
    page += [f"<div>{p}</div>" for p in parts if p]
    page += ["<h2>Tables</h2>", f"<pre>{html.escape(text)}</pre>", "</body></html>"]
    with open(path, "w") as f:
        f.write("\n".join(page))

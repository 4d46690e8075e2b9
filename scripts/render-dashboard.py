#!/usr/bin/env python3
"""Renders the Grafana dashboard's panels to one PNG, from a real Prometheus.

Every panel of docs/ops/grafana-dashboard.json is drawn from the same PromQL its targets
hold, run as range queries against the Prometheus given (Grafana's `$__rate_interval` is
replaced by --rate-interval). The picture shows what the dashboard shows, for machines
where Grafana itself cannot be installed.

    scripts/render-dashboard.py --prometheus http://127.0.0.1:9090 \
        --minutes 15 --out docs/ops/dashboard.png

Needs matplotlib (`pip install matplotlib`).
"""

import argparse
import datetime as dt
import json
import math
import sys
import urllib.parse
import urllib.request


def query_range(prometheus, expr, start, end, step):
    params = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": step})
    with urllib.request.urlopen(f"{prometheus}/api/v1/query_range?{params}", timeout=30) as reply:
        body = json.load(reply)
    if body.get("status") != "success":
        raise RuntimeError(f"{expr}: {body.get('error', body)}")
    return body["data"]["result"]


def legend(series, fmt):
    labels = series.get("metric", {})
    if fmt:
        text = fmt
        for key, value in labels.items():
            text = text.replace("{{" + key + "}}", value).replace("{{ " + key + " }}", value)
        return text
    shown = {k: v for k, v in labels.items() if k not in ("__name__", "job")}
    return ",".join(f"{k}={v}" for k, v in sorted(shown.items())) or "value"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prometheus", default="http://127.0.0.1:9090")
    parser.add_argument("--dashboard", default="docs/ops/grafana-dashboard.json")
    parser.add_argument("--minutes", type=float, default=15, help="how far back to draw")
    parser.add_argument("--step", type=float, default=5, help="seconds between points")
    parser.add_argument("--rate-interval", default="1m", help="what $__rate_interval stands for")
    parser.add_argument("--out", default="docs/ops/dashboard.png")
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    with open(args.dashboard) as f:
        dashboard = json.load(f)
    panels = [p for p in dashboard["panels"] if p.get("targets")]
    end = dt.datetime.now(dt.timezone.utc).timestamp()
    start = end - args.minutes * 60
    columns = 3
    rows = math.ceil(len(panels) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(6 * columns, 3.2 * rows), squeeze=False)
    empty = []
    for axis, panel in zip(axes.flat, panels):
        drawn = 0
        for target in panel["targets"]:
            expr = target["expr"].replace("$__rate_interval", args.rate_interval)
            for series in query_range(args.prometheus, expr, start, end, args.step):
                points = [(float(t), float(v)) for t, v in series["values"] if v not in ("NaN", "+Inf", "-Inf")]
                if not points:
                    continue
                times, values = [], []
                for i, (t, v) in enumerate(points):
                    if i and t - points[i - 1][0] > 2.5 * args.step:
                        times.append(dt.datetime.fromtimestamp(t - args.step, dt.timezone.utc))
                        values.append(float("nan"))  # a gap in the series: no line across it
                    times.append(dt.datetime.fromtimestamp(t, dt.timezone.utc))
                    values.append(v)
                axis.plot(times, values, label=legend(series, target.get("legendFormat")))
                drawn += 1
        axis.set_title(panel.get("title", ""), fontsize=10)
        axis.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
        axis.tick_params(labelsize=7)
        axis.grid(alpha=0.3)
        if drawn:
            axis.legend(fontsize=6, loc="upper left")
        else:
            empty.append(panel.get("title", ""))
            axis.text(0.5, 0.5, "no data", ha="center", va="center", transform=axis.transAxes)
    for axis in list(axes.flat)[len(panels):]:
        axis.set_visible(False)
    title = dashboard.get("title", "dashboard")
    when = dt.datetime.fromtimestamp(end, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    figure.suptitle(f"{title}: last {args.minutes:g} min to {when} (rendered from Prometheus)", fontsize=12)
    figure.tight_layout(rect=(0, 0, 1, 0.98))
    figure.savefig(args.out, dpi=80)
    print(f"wrote {args.out}: {len(panels)} panels, {len(empty)} without data")
    for name in empty:
        print(f"  no data: {name}", file=sys.stderr)


if __name__ == "__main__":
    main()

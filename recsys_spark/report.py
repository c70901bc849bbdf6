"""The nightly report: plain-text tables for job output, and ``report.html`` (self-contained, PNG plots
embedded) plus ``report.md`` under ``<lake>/_reports/report/ds=<ds>/``: the gate's decision first, then the
metrics per model, Recall@K curves, accuracy against the popularity of what is recommended, and slices."""

from __future__ import annotations

import base64
import html
import io
from typing import Dict, List, Sequence

from recsys_spark import schemas as S

TABLE_METRICS = ("ndcg", "recall", "hr", "mrr", "map", "precision", "coverage", "mean_popularity", "novelty")


def format_table(headers: Sequence[str], rows: List[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers]] + [[_fmt(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    line = "+-" + "-+-".join("-" * w for w in widths) + "-+"
    out = [line, "| " + " | ".join(c.ljust(w) for c, w in zip(cells[0], widths)) + " |", line]
    out += ["| " + " | ".join(c.rjust(w) if _is_num(c) else c.ljust(w) for c, w in zip(r, widths)) + " |"
            for r in cells[1:]]
    out.append(line)
    return "\n".join(out)


def _pick(rows: List[Dict], split: str, slice_name: str, k: int) -> Dict[tuple, Dict[str, float]]:
    """{(model, version): {metric: value}} of one split, slice and K."""
    out: Dict[tuple, Dict[str, float]] = {}
    for r in rows:
        if r[S.SPLIT] == split and r[S.SLICE] == slice_name and r[S.K] == k:
            out.setdefault((r[S.MODEL], r[S.MODEL_VERSION]), {})[r[S.METRIC]] = r[S.VALUE]
    return out


def metrics_rows(rows: List[Dict], k: int) -> tuple:
    """(headers, body): one line per model, test metrics at K (all users) and validation NDCG@K."""
    test, validation = _pick(rows, S.SPLIT_TEST, "all", k), _pick(rows, S.SPLIT_VALIDATION, "all", k)
    users = {(r[S.MODEL], r[S.MODEL_VERSION]): r[S.N_USERS] for r in rows
             if r[S.SPLIT] == S.SPLIT_TEST and r[S.SLICE] == "all"}
    order = sorted(test, key=lambda key: -test[key].get("ndcg", 0.0))
    body = [[m, v, validation.get((m, v), {}).get("ndcg", float("nan"))]
            + [test[(m, v)].get(x, float("nan")) for x in TABLE_METRICS] + [users.get((m, v), 0)] for m, v in order]
    headers = ["model", "version", f"val ndcg@{k}"] + [f"{x}@{k}" for x in TABLE_METRICS] + ["test users"]
    return headers, body


def metrics_table(rows: List[Dict], k: int) -> str:
    return format_table(*metrics_rows(rows, k))


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def plots(rows: List[Dict], k: int, ks: List[int]) -> Dict[str, str]:
    """Title -> base64 PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    test = _pick(rows, S.SPLIT_TEST, "all", k)
    models = sorted(test, key=lambda key: -test[key].get("ndcg", 0.0))
    names = [m for m, _ in models]
    out = {}
    fig, ax = plt.subplots(figsize=(8, 3.5))
    width = 0.8 / 3
    for j, metric in enumerate(("ndcg", "recall", "hr")):
        ax.bar(np.arange(len(models)) + j * width, [test[m].get(metric, 0) for m in models], width, label=f"{metric}@{k}")
    ax.set_xticks(np.arange(len(models)) + width, names, rotation=30, ha="right")
    ax.set_title(f"Test metrics per model (K={k}, all users)")
    ax.legend()
    out[f"Metrics per model at K={k}"] = _png(fig)

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for j, model in enumerate(models):
        values = [_pick(rows, S.SPLIT_TEST, "all", kk).get(model, {}).get("recall", np.nan) for kk in ks]
        ax.plot(ks, values, marker="o", label=model[0], color=plt.cm.tab20(j % 20))
    ax.set_xlabel("K")
    ax.set_ylabel("Recall@K")
    ax.set_title("Recall@K (test)")
    ax.legend(fontsize=7)
    out["Recall@K curves"] = _png(fig)

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for model in models:
        ax.scatter(test[model].get("mean_popularity", 0), test[model].get("ndcg", 0))
        ax.annotate(model[0], (test[model].get("mean_popularity", 0), test[model].get("ndcg", 0)), fontsize=7)
    ax.set_xlabel(f"mean train users of a recommended item (top {k})")
    ax.set_ylabel(f"NDCG@{k}")
    ax.set_title("Accuracy against the popularity of recommendations")
    out["Accuracy against popularity"] = _png(fig)

    slices = ["all", "cold", "heavy", "long_tail"]
    fig, ax = plt.subplots(figsize=(8, 3.5))
    width = 0.8 / max(len(models), 1)
    for j, model in enumerate(models):
        values = [_pick(rows, S.SPLIT_TEST, s, k).get(model, {}).get("ndcg", 0) for s in slices]
        ax.bar(np.arange(len(slices)) + j * width, values, width, label=model[0], color=plt.cm.tab20(j % 20))
    ax.set_xticks(np.arange(len(slices)) + width * (len(models) - 1) / 2, slices)
    ax.set_title(f"NDCG@{k} by slice (test)")
    ax.legend(fontsize=7)
    out[f"NDCG@{k} by slice"] = _png(fig)
    return out


def decision_lines(decision: Dict) -> List[str]:
    verdict = "APPROVED for publication" if decision["passed"] else "REFUSED: yesterday's recommendations stay current"
    return [f"Champion: {decision['champion']} {decision['champion_version']} (best validation NDCG@{decision['k']}) "
            f"— {verdict}"] + [f"- {reason}" for reason in decision["reasons"]]


def render(rows: List[Dict], decision: Dict, k: int, ks: List[int], ds: str) -> Dict[str, str]:
    """{"report.html": ..., "report.md": ...}."""
    headers, body = metrics_rows(rows, k)
    images = plots(rows, k, ks)
    md = [f"# recsys_spark nightly report, ds={ds}", "", "## Publication gate", ""] + decision_lines(decision) + [
        "", f"## Test metrics at K={k} (full ranking, history masked, all users)", "",
        "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    md += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in body]
    md += ["", "Plots: see report.html beside this file (" + ", ".join(images) + ")."]
    cells = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    table = f"<table><tr>{cells}</tr>" + "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>" for row in body) + "</table>"
    gate = "<br>".join(html.escape(line) for line in decision_lines(decision))
    color = "#e6f4ea" if decision["passed"] else "#fde8e8"
    figures = "".join(f"<h3>{html.escape(title)}</h3><img alt=\"{html.escape(title)}\" src=\"data:image/png;base64,{png}\">"
                      for title, png in images.items())
    page = (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>recsys_spark report {ds}</title>"
            "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;font-size:12px}"
            "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}</style></head><body>"
            f"<h1>recsys_spark nightly report, ds={ds}</h1><div style=\"background:{color};padding:1em\">"
            f"<h2>Publication gate</h2>{gate}</div><h2>Test metrics at K={k}</h2>{table}{figures}</body></html>")
    return {"report.html": page, "report.md": "\n".join(md) + "\n"}


def run_report(lake, cfg, ds: str) -> Dict[str, str]:
    """Writes ``report.html`` and ``report.md`` for ``ds`` from its metrics and gate decision."""
    from recsys_spark.evaluate.gate import read_decision

    rows = [r.asDict() for r in lake.read_table(
        S.METRICS, ds, f"run `python -m jobs.evaluate --ds {ds} --lake {lake.root}` first.").collect()]
    decision = read_decision(lake, ds)
    if decision is None:
        from recsys_spark.errors import MissingInputError

        raise MissingInputError(f"no gate decision for ds={ds}: run `python -m jobs.gate --ds {ds} --lake {lake.root}` first.")
    files = render(rows, decision, cfg.evaluate.k, sorted(set(cfg.evaluate.ks)), ds)
    path = lake.write_bundle(f"{S.REPORTS}/report", ds, {}, files=files)
    return {"html": f"{path}/report.html", "md": f"{path}/report.md"}


def _fmt(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _is_num(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False

"""Plain-text tables for job output."""

from typing import Dict, List, Sequence

from recsys_spark import schemas as S


def format_table(headers: Sequence[str], rows: List[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers]] + [[_fmt(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    line = "+-" + "-+-".join("-" * w for w in widths) + "-+"
    out = [line, "| " + " | ".join(c.ljust(w) for c, w in zip(cells[0], widths)) + " |", line]
    out += ["| " + " | ".join(c.rjust(w) if _is_num(c) else c.ljust(w) for c, w in zip(r, widths)) + " |"
            for r in cells[1:]]
    out.append(line)
    return "\n".join(out)


def metrics_table(rows: List[Dict]) -> str:
    """One line per model, one column per metric."""
    metrics = sorted({r[S.METRIC] for r in rows})
    models: Dict[str, Dict] = {}
    for r in rows:
        entry = models.setdefault(r[S.MODEL], {"version": r[S.MODEL_VERSION], "users": r[S.N_USERS]})
        entry[r[S.METRIC]] = r[S.VALUE]
    body = [[name, e["version"]] + [e.get(m, float("nan")) for m in metrics] + [e["users"]]
            for name, e in models.items()]
    return format_table(["model", "version"] + metrics + ["test users"], body)


def _fmt(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _is_num(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False

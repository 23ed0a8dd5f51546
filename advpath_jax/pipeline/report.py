"""Markdown report with the analogues of the paper's Tables 1-2 and Figures 1-2.

``write_report(out_dir, results, examples=None)`` writes, atomically, into ``out_dir``:

* ``report.md``: Table 1 (IoU / FNR per method and percentile), Table 2 (R per predicted
  class with both AUCs), Figure 1 and Figure 2 embedded, and the run information;
* ``figure1_examples.png`` (when ``examples`` is given) and ``figure2_aopc.png`` (when any
  method has an AOPC curve);
* ``results.json``: every number shown in the report, at full precision.

Input schema (plain dicts; array-likes may be numpy/JAX arrays or nested lists)::

    results = {
      "title":   str,                     # optional, default "advpath-jax report"
      "dataset": str,                     # optional
      "meta":    dict,                    # optional, JSON-serialisable (config, timings, sizes)
      "percentiles": [p_1, ..., p_P],     # required when a method has "iou"/"fnr"
      "ties": "percentile" | "index",     # optional, the thresholding rule used (default "percentile")
      "methods": {                        # required, non-empty; its order is the tables' order
        NAME: {
          "iou": [P, N_pos],              # optional, per positive image, one row per percentile
          "fnr": [P, N_pos],              #   (e.g. localization_metrics(...)["iou"])
          "relevance": {                  # optional, per image of the balanced subset
            "pred": [N] 0/1,              #   predicted class of each image
            "auc_deletion": [N],
            "auc_preservation": [N],
          },                              #   (a RelevanceResult is accepted too)
          "aopc": [N, L+1] or [L+1],      # optional, per image or mean AOPC(L), L = 0..steps
        },                                #   (an AOPCResult is accepted too)
        ...
      },
      "aopc_random": [N, L+1] or [L+1],   # optional reference of Figure 2;
                                          #   default: methods["Random"]["aopc"]
      "per_image": dict,                  # optional, copied to results.json (see pipeline.run.evaluate_maps)
      "claims": dict,                     # optional, pipeline.claims.claim_evidence(...): the findings
      "constant_maps": {NAME: share},     # optional, share of constant maps per method
      "metric_settings": dict,            # optional: AOPC patch / regions, R groups, resamples
    }

    examples = {                          # optional, Figure 1 (a few positive images)
      "images": [n, H, W] or [n, H, W, C] in [0, 1]   (C > 1: channel 0 is shown),
      "masks":  [n, H, W] bool,           # ground truth, drawn as a contour
      "maps":   {NAME: [n, H, W], ...},   # the columns, in this order
      "ids":    [n] str,                  # optional row labels
    }

Summaries are ``advpath_jax.metrics.stats.summarize`` (mean, population std, n). ``R`` is
always recomputed per image from the two AUCs as ``relevance_r`` (harmonic mean of
``1 - AUC_deletion`` and ``AUC_preservation``, Lim et al.). Figure 2 plots, for every method
other than the reference, ``mean AOPC_method(L) - mean AOPC_random(L)``.

``results.json`` layout::

    {"title", "dataset", "meta", "percentiles", "ties", "methods": [NAME, ...],
     "table1": {NAME: {"<p>": {"iou": S, "fnr": S}}},
     "table2": {NAME: {"0"|"1"|"ALL": {"R": S, "auc_deletion": S, "auc_preservation": S}}},
     "aopc": {"L": [...], "reference": NAME|"aopc_random"|None, "random": [...]|None,
              "curves": {NAME: [...]}, "relative": {NAME: [...]}},
     "figures": {"figure1": file|None, "figure2": file|None},
     "per_image", "claims", "constant_maps", "metric_settings": as given (when given)}

with ``S = {"mean", "std", "n"}`` and ``"<p>"`` the percentile as written by ``_pkey``.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Mapping

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from advpath_jax.metrics.aopc import aopc_relative
from advpath_jax.metrics.relevance import relevance_r
from advpath_jax.metrics.stats import by_class, summarize
from advpath_jax.io_utils import dumps_json, write_bytes_atomic, write_text_atomic
from advpath_jax.pipeline import quality
from advpath_jax.pipeline.markdown import md_cell
from advpath_jax.pipeline.timings import time_table_md

FIGURE1 = "figure1_examples.png"
FIGURE2 = "figure2_aopc.png"
REPORT = "report.md"
RESULTS = "results.json"
RANDOM = "Random"


# ----------------------------------------------------------------------------- files


def _png_bytes(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


# ----------------------------------------------------------------------------- inputs


def percentile_key(p: float) -> str:
    """Percentile as a key: ``98.0 -> "98"``, ``99.5 -> "99.5"``."""
    return f"{float(p):g}"


_pkey = percentile_key


def _as_mapping(entry, what: str) -> Mapping:
    if hasattr(entry, "_asdict"):
        return entry._asdict()
    if not isinstance(entry, Mapping):
        raise ValueError(f"{what}: expected a dict, got {type(entry).__name__}")
    return entry


def _array(values, what: str, ndim: tuple[int, ...]) -> np.ndarray:
    try:
        a = np.asarray(values, np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{what}: not a numeric array ({err})") from None
    if a.ndim not in ndim:
        raise ValueError(f"{what}: expected {' or '.join(f'{d}-D' for d in ndim)} values, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{what}: contains NaN or infinite values")
    return a


def _table1(methods: Mapping, percentiles: list[float]) -> dict:
    table: dict = {}
    for name, entry in methods.items():
        rows = {}
        for metric in ("iou", "fnr"):
            if metric not in entry:
                continue
            a = _array(entry[metric], f"methods[{name!r}][{metric!r}]", (1, 2))
            a = a[None] if a.ndim == 1 else a
            if a.shape[0] != len(percentiles):
                raise ValueError(
                    f"methods[{name!r}][{metric!r}]: {a.shape[0]} rows for {len(percentiles)} percentiles"
                )
            for p, row in zip(percentiles, a):
                rows.setdefault(_pkey(p), {})[metric] = summarize(row)
        if rows:
            table[name] = rows
    return table


def _table2(methods: Mapping) -> dict:
    table: dict = {}
    for name, entry in methods.items():
        if "relevance" not in entry or entry["relevance"] is None:
            continue
        rel = _as_mapping(entry["relevance"], f"methods[{name!r}]['relevance']")
        missing = [k for k in ("pred", "auc_deletion", "auc_preservation") if k not in rel]
        if missing:
            raise ValueError(f"methods[{name!r}]['relevance']: missing {missing}")
        d = _array(rel["auc_deletion"], f"methods[{name!r}]['relevance']['auc_deletion']", (1,))
        p = _array(rel["auc_preservation"], f"methods[{name!r}]['relevance']['auc_preservation']", (1,))
        if d.shape != p.shape:
            raise ValueError(f"methods[{name!r}]['relevance']: AUC arrays of different lengths")
        try:
            parts = {
                "R": by_class(relevance_r(d, p), rel["pred"]),
                "auc_deletion": by_class(d, rel["pred"]),
                "auc_preservation": by_class(p, rel["pred"]),
            }
        except ValueError as err:
            raise ValueError(f"methods[{name!r}]['relevance']: {err}") from None
        table[name] = {cls: {k: parts[k][cls] for k in parts} for cls in ("0", "1", "ALL")}
    return table


def _mean_curve(values, what: str) -> np.ndarray:
    if hasattr(values, "aopc") and hasattr(values, "_asdict"):
        values = values.aopc
    a = _array(values, what, (1, 2))
    return a.mean(axis=0) if a.ndim == 2 else a


def _aopc(results: Mapping, methods: Mapping) -> dict | None:
    curves = {
        name: _mean_curve(entry["aopc"], f"methods[{name!r}]['aopc']")
        for name, entry in methods.items()
        if entry.get("aopc") is not None
    }
    if results.get("aopc_random") is not None:
        reference, random = "aopc_random", _mean_curve(results["aopc_random"], "aopc_random")
    elif RANDOM in curves:
        reference, random = RANDOM, curves[RANDOM]
    else:
        reference, random = None, None
    if not curves and random is None:
        return None
    lengths = {c.shape[0] for c in curves.values()} | ({random.shape[0]} if random is not None else set())
    if len(lengths) != 1:
        raise ValueError(f"AOPC curves have different numbers of steps: {sorted(lengths)}")
    if curves and reference is None:
        raise ValueError("AOPC curves given without a random reference: add results['aopc_random'] "
                         f"or a method named {RANDOM!r} with an 'aopc' curve")
    n = lengths.pop()
    relative = {name: aopc_relative(c, random).tolist() for name, c in curves.items() if name != reference}
    return {
        "L": list(range(n)),
        "reference": reference,
        "random": random.tolist() if random is not None else None,
        "curves": {name: c.tolist() for name, c in curves.items()},
        "relative": relative,
    }


# ----------------------------------------------------------------------------- figures


def _figure1(examples: Mapping) -> bytes:
    images = _array(examples.get("images"), "examples['images']", (3, 4))
    images = images[..., 0] if images.ndim == 4 else images
    n, h, w = images.shape
    masks = np.asarray(examples.get("masks"))
    if masks.shape != (n, h, w):
        raise ValueError(f"examples['masks']: expected shape {(n, h, w)}, got {masks.shape}")
    maps = examples.get("maps") or {}
    if not isinstance(maps, Mapping):
        raise ValueError("examples['maps']: expected a dict NAME -> [n, H, W]")
    maps = {name: _array(m, f"examples['maps'][{name!r}]", (3,)) for name, m in maps.items()}
    for name, m in maps.items():
        if m.shape != (n, h, w):
            raise ValueError(f"examples['maps'][{name!r}]: expected shape {(n, h, w)}, got {m.shape}")
    ids = list(examples.get("ids") or [])
    cols = 1 + len(maps)
    fig = Figure(figsize=(1.7 * cols, 1.7 * n))
    axes = fig.subplots(n, cols, squeeze=False)
    for i in range(n):
        ax = axes[i, 0]
        ax.imshow(images[i], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
        if masks[i].any() and not masks[i].all():
            ax.contour(masks[i].astype(float), levels=[0.5], colors="red", linewidths=0.8)
        if ids:
            ax.set_ylabel(str(ids[i]), fontsize=7)
        for j, (name, m) in enumerate(maps.items(), start=1):
            axes[i, j].imshow(m[i], cmap="inferno", interpolation="nearest")
    for j, title in enumerate(["image + mask", *maps.keys()]):
        axes[0, j].set_title(title, fontsize=8)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return _png_bytes(fig)


def _figure2(aopc: Mapping) -> bytes:
    fig = Figure(figsize=(7.0, 4.2))
    ax = fig.subplots()
    names = list(aopc["relative"])
    cmap = matplotlib.colormaps["tab20"]
    styles = ["-", "--", "-.", ":"]
    for k, name in enumerate(names):
        ax.plot(aopc["L"], aopc["relative"][name], label=name, color=cmap(k % 20),
                linestyle=styles[(k // 10) % len(styles)], linewidth=1.3)
    ax.axhline(0.0, color="black", linewidth=0.8, linestyle=":")
    ax.set_xlabel("L (regions replaced)")
    ax.set_ylabel("AOPC relative to random")
    ax.grid(alpha=0.3)
    if names:
        ax.legend(fontsize=7, ncol=2, loc="best")
    fig.tight_layout()
    return _png_bytes(fig)


# ----------------------------------------------------------------------------- markdown


def _fmt(s: Mapping | None, digits: int = 3) -> str:
    if not s or s.get("mean") is None:
        return "—"
    return f"{s['mean']:.{digits}f} ± {s['std']:.{digits}f}"


def _best(values: dict[str, float | None], higher: bool) -> set[str]:
    vals = {k: v for k, v in values.items() if v is not None}
    if not vals:
        return set()
    target = max(vals.values()) if higher else min(vals.values())
    return {k for k, v in vals.items() if math.isclose(v, target, rel_tol=0, abs_tol=1e-12)}


TIE_TEXT = {
    "percentile": "every pixel whose value is >= the map's p-th percentile `np.percentile(map, p)`, "
                  "so pixels tied at the threshold are all kept, as in the authors' code",
    "index": "exactly ceil(N (100 − p) / 100) pixels; ties broken by row-major pixel index",
}


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def _table1_md(table1: Mapping, percentiles: list[float], order: list[str], ties: str) -> list[str]:
    names = [m for m in order if m in table1]
    cols = [(_pkey(p), metric) for p in percentiles for metric in ("iou", "fnr")]
    best = {
        c: _best({m: (table1[m].get(c[0], {}).get(c[1]) or {}).get("mean") for m in names}, c[1] == "iou")
        for c in cols
    }
    header = ["Method"] + [f"{'IoU' if metric == 'iou' else 'FNR'} p{p}" for p, metric in cols]
    rows = []
    for m in names:
        cells = []
        for c in cols:
            text = _fmt(table1[m].get(c[0], {}).get(c[1]))
            cells.append(f"**{text}**" if m in best[c] and text != "—" else text)
        rows.append([md_cell(m)] + cells)
    n = {s["n"] for m in names for per in table1[m].values() for s in per.values()}
    lines = [
        "## Table 1: localisation on positive images",
        "",
        f"B = the top (100 − p)% pixels of each map ({TIE_TEXT[ties]}). "
        "`IoU = |GT ∩ B| / |GT ∪ B|` (higher is better); "
        "`FNR = |B \\ GT| / |B|`, the share of B outside the annotation (lower is better). Mean ± std over "
        f"{', '.join(str(v) for v in sorted(n))} positive image(s). Best per column in bold.",
        "",
    ]
    return lines + _md_table(header, rows)


def _groups_text(settings: Mapping | None) -> str:
    if not settings or settings.get("relevance_group_pixels") is None:
        return ""
    steps = settings.get("relevance_steps") or settings.get("relevance_groups")
    return (f" Groups of {settings['relevance_group_pixels']} pixels ({settings['relevance_groups']} groups); "
            f"the curves are evaluated at {steps + 1} points.")


def _table2_md(table2: Mapping, order: list[str], settings: Mapping | None = None) -> list[str]:
    names = [m for m in order if m in table2]
    classes = ("0", "1", "ALL")
    best = {c: _best({m: table2[m][c]["R"]["mean"] for m in names}, True) for c in classes}
    header = ["Method"]
    for c in classes:
        header += [f"R ({c})", f"AUC pres / del ({c})"]
    rows = []
    for m in names:
        cells = [md_cell(m)]
        for c in classes:
            e = table2[m][c]
            text = _fmt(e["R"])
            cells.append(f"**{text}**" if m in best[c] and text != "—" else text)
            pres, dele = e["auc_preservation"]["mean"], e["auc_deletion"]["mean"]
            cells.append("—" if pres is None else f"{pres:.3f} / {dele:.3f}")
        rows.append(cells)
    counts = {c: sorted({table2[m][c]["R"]["n"] for m in names}) for c in classes}
    lines = [
        "## Table 2: feature relevance R per predicted class",
        "",
        "Deletion (most relevant pixels first) and preservation (least relevant first) curves of the "
        "predicted class's score while equal-size groups of pixels are replaced by the adversarial "
        "perturbation; AUCs D (deletion) and P (preservation) by the trapezoid rule on the fraction of "
        "pixels replaced. `R = 2(1 − D)P / ((1 − D) + P)`, the harmonic mean of Lim et al.'s code "
        f"(RelEx), higher is better; a random map scores above 0.{_groups_text(settings)} "
        "Mean ± std; images per class: "
        + ", ".join(f"{c}: {'/'.join(map(str, counts[c]))}" for c in classes)
        + ". Best R per class in bold.",
        "",
    ]
    return lines + _md_table(header, rows)


def _regions_text(settings: Mapping | None) -> str:
    if not settings or settings.get("aopc_patch") is None:
        return ""
    p = settings["aopc_patch"]
    return (f" Regions: {settings['aopc_regions']} equal {p}×{p} patches tiling the image "
            "(the side that divides the image nearest to 9 px at 224 px).")


def _constant_md(constant: Mapping, order: list[str]) -> list[str]:
    names = [m for m in order if m in constant]
    rows = [[md_cell(m), f"{100 * constant[m]:.1f}%"] for m in names]
    return ["## Constant maps", "",
            "Share of each method's maps (scored images: positives and the balanced subset) that are "
            "constant: max − min ≤ 1e-6 · max |map| (all-zero maps included).", ""] + \
        _md_table(["Method", "constant maps"], rows)


def _interval(s: Mapping) -> str:
    if s.get("low") is None:
        return f"{s['mean']:+.3f} (n={s['n']})" if s.get("mean") is not None else "—"
    return f"{s['mean']:+.3f} [{s['low']:+.3f}, {s['high']:+.3f}]"


VERDICT_MARK = {"holds": "holds", "does not hold": "**does not hold**", "inconclusive": "inconclusive"}


def _claims_md(claims: Mapping) -> list[str]:
    lines = ["## Evidence for the paper's findings", "",
             "Paired per-image differences `metric(A) − metric(B)` on the same images (IoU on the scored "
             "positives; R and AOPC at L on the balanced subset), mean and 95% percentile-bootstrap "
             "interval. Verdict: holds (interval above 0), does not hold (below 0), inconclusive "
             "(contains 0).", ""]
    for key, claim in claims.items():
        comps = claim.get("comparisons") or []
        if not comps:
            continue
        labels = list(dict.fromkeys(lab for c in comps for lab in c["metrics"]))
        tally = claim.get("tally") or {}
        summary = "; ".join(
            f"{lab}: {t['holds']} hold, {t['does not hold']} do not, {t['inconclusive']} inconclusive"
            for lab, t in tally.items())
        lines += [f"### ({key}) {claim['title']}", "", f"Of {len(comps)} comparisons — {summary}.", ""]
        header = ["A", "B"] + [f"{lab} Δ [95% CI]" for lab in labels]
        rows = []
        for c in comps:
            cells = [md_cell(c["method"]), md_cell(c["versus"])]
            for lab in labels:
                s = c["metrics"].get(lab)
                cells.append("—" if s is None else f"{_interval(s)} {VERDICT_MARK[s['verdict']]}")
            rows.append(cells)
        lines += _md_table(header, rows) + [""]
    return lines


def _settings_md(explainers: Mapping) -> list[str]:
    lines = ["## Settings", ""]
    for name, value in explainers.items():
        text = value if isinstance(value, str) else dumps_json(value, indent=None, strict=True, ensure_ascii=False)
        lines.append(f"- {name}: {text}")
    return lines


def _render(doc: Mapping, fig1: str | None, fig2: str | None) -> str:
    lines = [f"# {doc['title']}", ""]
    if doc.get("dataset"):
        lines += [f"Data set: **{doc['dataset']}**.", ""]
    lines += [f"All numbers are in [`{RESULTS}`]({RESULTS}).", ""]
    if doc.get("quality"):
        lines += quality.table_md(doc["quality"])
    order = doc["methods"]
    if doc["table1"]:
        lines += _table1_md(doc["table1"], doc["percentiles"], order, doc["ties"]) + [""]
    if doc["table2"]:
        lines += _table2_md(doc["table2"], order, doc.get("metric_settings")) + [""]
    if doc.get("constant_maps"):
        lines += _constant_md(doc["constant_maps"], order) + [""]
    if fig1:
        lines += [
            "## Figure 1: example positives",
            "",
            "Each row: the image with the ground-truth contour (red), then the maps of the main methods.",
            "",
            f"![Figure 1]({fig1})",
            "",
        ]
    if fig2:
        ref = doc["aopc"]["reference"]
        ref_text = "the random ordering baseline" if ref == "aopc_random" else f"the method `{ref}`"
        lines += [
            "## Figure 2: AOPC relative to random",
            "",
            "`AOPC(L) = 1/(L+1) Σ_{k=0..L} (s(x⁰) − s(xᵏ))`, s the predicted class's score, regions "
            "replaced most relevant first by the translator's output; plotted as the mean over images "
            f"minus that of {ref_text}.{_regions_text(doc.get('metric_settings'))}",
            "",
            f"![Figure 2]({fig2})",
            "",
        ]
    if doc.get("claims"):
        lines += _claims_md(doc["claims"]) + [""]
    meta = doc.get("meta") or {}
    if meta.get("explainers"):
        lines += _settings_md(meta["explainers"]) + [""]
    if meta.get("time_table"):
        lines += time_table_md(meta["time_table"]) + [""]
    if doc.get("meta"):
        lines += ["## Run information", ""]
        for k, v in doc["meta"].items():
            if k == "time_table":  # rendered above
                continue
            lines.append(f"- {k}: `{dumps_json(v, indent=None, strict=True)}`")
        lines.append("")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- entry point


def write_report(out_dir: str | os.PathLike, results: Mapping, examples: Mapping | None = None) -> dict:
    """Write ``report.md``, ``results.json`` and the figures into ``out_dir``.

    Args:
      out_dir: directory (created if missing).
      results: the results dict (schema in the module docstring).
      examples: optional Figure 1 input (schema in the module docstring).

    Returns:
      ``{"report": path, "results": path, "figure1": path|None, "figure2": path|None}``.

    Raises:
      ValueError: a malformed results/examples dict (the message names the entry).
    """
    if not isinstance(results, Mapping):
        raise ValueError(f"results: expected a dict, got {type(results).__name__}")
    methods = results.get("methods")
    if not isinstance(methods, Mapping) or not methods:
        raise ValueError("results['methods']: expected a non-empty dict NAME -> metrics")
    methods = {str(k): _as_mapping(v, f"methods[{k!r}]") for k, v in methods.items()}
    needs_p = any("iou" in e or "fnr" in e for e in methods.values())
    percentiles = [float(p) for p in (results.get("percentiles") or [])]
    if needs_p and not percentiles:
        raise ValueError("results['percentiles']: required when methods carry 'iou'/'fnr'")
    ties = results.get("ties") or "percentile"
    if ties not in TIE_TEXT:
        raise ValueError(f"results['ties']: expected one of {tuple(TIE_TEXT)}, got {ties!r}")

    doc = {
        "title": str(results.get("title") or "advpath-jax report"),
        "dataset": results.get("dataset"),
        "meta": dict(results.get("meta") or {}),
        "percentiles": percentiles,
        "ties": ties,
        "methods": list(methods),
        "table1": _table1(methods, percentiles),
        "table2": _table2(methods),
        "aopc": _aopc(results, methods),
    }
    for key in ("metric_settings", "constant_maps", "claims", "per_image", "quality"):
        if results.get(key) is not None:
            doc[key] = results[key]
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    paths = {"report": os.path.join(out_dir, REPORT), "results": os.path.join(out_dir, RESULTS),
             "figure1": None, "figure2": None}
    fig1 = fig2 = None
    if examples is not None:
        write_bytes_atomic(os.path.join(out_dir, FIGURE1), _figure1(_as_mapping(examples, "examples")))
        fig1, paths["figure1"] = FIGURE1, os.path.join(out_dir, FIGURE1)
    if doc["aopc"] is not None and doc["aopc"]["relative"]:
        write_bytes_atomic(os.path.join(out_dir, FIGURE2), _figure2(doc["aopc"]))
        fig2, paths["figure2"] = FIGURE2, os.path.join(out_dir, FIGURE2)
    doc["figures"] = {"figure1": fig1, "figure2": fig2}
    try:
        payload = dumps_json(doc, indent=2, strict=True, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ValueError(f"results: cannot be written as JSON ({err})") from None
    write_text_atomic(paths["results"], payload)
    write_text_atomic(paths["report"], _render(doc, fig1, fig2))
    return paths

"""``report.html``: one self-contained page (plots embedded as PNG data URIs, no script or style
fetched) that answers "did transfer help here, by how much, at what cost?", plus ``metrics.json``.

Sections: the verdict, the comparison table (the task's headline metric — accuracy, micro-F1,
MAE — with its 95% CI over seeds, the secondary metrics, time, peak memory), learning curves
(the headline against labels and against wall time), per-epoch training curves, what the task
shows of the best transfer run (classification: the confusion matrix, per-class metrics and the
most confidently wrong test examples as thumbnails, snippets, or audio players with spectrograms; multi-label: per-label metrics;
regression: predicted-against-true and residual plots), and the pre-flight data summary.
``fit`` writes the same page for its single run."""
from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from headstart._files import atomic_write_text
from headstart.evaluation.scoring import Headline

# After load, count the plots that decoded, log it, and expose it to tests (headless Chromium).
_CHECK_SCRIPT = """<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.querySelectorAll('img.plot'));
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute('data-plots', ok + '/' + imgs.length);
  console.log('headstart report: ' + ok + '/' + imgs.length + ' plots rendered');
});
</script>"""

_STYLE = """<style>
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}.verdict{font-size:1.15em;
background:#eef6ee;border-left:4px solid #3a3;padding:.6em 1em}.bad{background:#fbeeee;border-color:#c33}
img.plot{max-width:100%;border:1px solid #ddd}.wrong{display:inline-block;width:150px;margin:4px;
vertical-align:top;font-size:.85em}pre{background:#f7f7f7;padding:.8em;overflow-x:auto}
</style>"""


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _img(b64: str, alt: str) -> str:
    return f'<img class="plot" alt="{html.escape(alt)}" src="data:image/png;base64,{b64}">'


def _figure(w: float = 6.5, h: float = 4.0) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(w, h))


def learning_curve_plots(summary: list[dict[str, Any]], headline: Headline | None = None) -> list[str]:
    """The headline metric (accuracy, micro-F1, MAE ...) against the number of labels (data
    efficiency) and against wall time."""
    h = headline or Headline()
    out = []
    methods = list(dict.fromkeys(r["method"] for r in summary))
    what = h.name[:1].upper() + h.name[1:]
    ylabel = f"test {h.name}" + (" (%)" if h.percent else "") + ("; lower is better" if h.direction < 0 else "")
    for xkey, xlabel, title in (("n", "labeled training examples", "Data efficiency"),
                                ("seconds", "wall time per fit (s)", f"{what} against cost")):
        fig, ax = _figure()
        for m in methods:
            rows = sorted((r for r in summary if r["method"] == m), key=lambda r: r[xkey])
            x = [r[xkey] for r in rows]
            y = [r["value"] for r in rows]
            err = None
            if all(not math.isnan(r["ci_low"]) for r in rows):
                err = [[r["value"] - r["ci_low"] for r in rows], [r["ci_high"] - r["value"] for r in rows]]
            ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=m, linestyle="-" if xkey == "n" else ":")
        if len({r["n"] for r in summary}) > 1 or xkey == "seconds":
            ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        out.append(_img(_png(fig), title))
    return out


def history_plot(histories: dict[str, list[dict[str, Any]]]) -> str | None:
    """Per-epoch training loss (solid) and validation accuracy (dashed, right axis)."""
    series = {m: h for m, h in histories.items() if any("train_loss" in e for e in h)}
    if not series:
        return None
    fig, ax = _figure()
    ax2 = None
    for m, h in series.items():
        ep = [e["epoch"] for e in h if "train_loss" in e]
        ax.plot(ep, [e["train_loss"] for e in h if "train_loss" in e], marker=".", label=f"{m} train loss")
        key = "val_accuracy" if any("val_accuracy" in e for e in h) else "val_score"
        if any(key in e for e in h):
            ax2 = ax2 or ax.twinx()
            ax2.plot([e["epoch"] for e in h if key in e], [e[key] for e in h if key in e], linestyle="--",
                     label=f"{m} {key.replace('_', ' ')}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss")
    ax.set_title("Training curves")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    if ax2 is not None:
        ax2.set_ylabel("validation accuracy (or the task's score)")
        ax2.legend(fontsize=8, loc="center right")
    return _img(_png(fig), "Training curves")


def confusion_plot(cm: Sequence[Sequence[int]], classes: Sequence[Any], title: str) -> str:
    cm = np.asarray(cm)
    k = len(classes)
    fig, ax = _figure(max(4.0, 0.5 * k + 2), max(3.5, 0.5 * k + 1.5))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(k), [str(c)[:14] for c in classes], rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), [str(c)[:14] for c in classes], fontsize=8)
    if k <= 20:
        for i in range(k):
            for j in range(k):
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    return _img(_png(fig), title)


def _thumb(item: Any) -> str:
    from headstart.data.images import load_image

    img = load_image(item).convert("RGB")
    img.thumbnail((128, 128))
    if min(img.size) < 64:  # tiny images: enlarge so they can be seen
        img = img.resize((img.width * 4, img.height * 4), 0)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return f'<img alt="example" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


AUDIO_RATE, AUDIO_SECONDS = 16000, 4.0  # what the page embeds of a clip: 16 kHz mono, the first 4 s


def _audio_cell(item: Any) -> str:
    """An ``<audio>`` player (16-bit WAV as a data URI) and a spectrogram of a clip's first
    seconds; a clip that no longer reads is named instead."""
    import soundfile as sf

    from headstart.data.audio import load_audio

    try:
        wave = load_audio(item, sampling_rate=AUDIO_RATE)[: int(AUDIO_RATE * AUDIO_SECONDS)]
    except Exception as e:  # noqa: BLE001 - the page still renders; the clip says why it is missing
        return f"<q>{html.escape(str(item)[:120])}: {html.escape(str(e)[:160])}</q>"
    buf = io.BytesIO()
    sf.write(buf, np.clip(wave, -1, 1), AUDIO_RATE, format="WAV", subtype="PCM_16")
    fig, ax = _figure(2.2, 1.5)
    ax.specgram(wave, NFFT=400, Fs=AUDIO_RATE, noverlap=240, cmap="magma")
    ax.set_xlabel("s", fontsize=7)
    ax.set_ylabel("Hz", fontsize=7)
    ax.tick_params(labelsize=6)
    name = Path(str(item)).name if isinstance(item, (str, Path)) else "clip"
    return (f'<audio controls preload="none" style="width:146px" src="data:audio/wav;base64,'
            f'{base64.b64encode(buf.getvalue()).decode()}"></audio>{_img(_png(fig), f"spectrogram of {name}")}'
            f"<br><small>{html.escape(name[:40])}</small>")


def _example_cell(item: Any, modality: str) -> str:
    if modality == "image":
        return _thumb(item)
    if modality == "audio":
        return _audio_cell(item)
    return f"<q>{html.escape(str(item)[:240])}</q>"


def confidently_wrong(items: Sequence[Any], labels: Sequence[Any], proba: np.ndarray, classes: Sequence[Any],
                      modality: str, k: int = 8) -> str:
    """The k test examples predicted wrong with the highest confidence."""
    index = {c: i for i, c in enumerate(classes)}
    pred = proba.argmax(1)
    wrong = [i for i, lab in enumerate(labels) if index.get(lab, -1) != pred[i]]
    wrong.sort(key=lambda i: -proba[i, pred[i]])
    if not wrong:
        return "<p>No test example was misclassified.</p>"
    cells = []
    for i in wrong[:k]:
        what = _example_cell(items[i], modality)
        cells.append(f'<div class="wrong">{what}<br>true <b>{html.escape(str(labels[i]))}</b>, predicted '
                     f'<b>{html.escape(str(classes[pred[i]]))}</b> ({100 * proba[i, pred[i]]:.0f}%)</div>')
    return "".join(cells)


def _table(rows: list[list[str]], header: list[str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def per_class_table(metrics: dict[str, Any]) -> str:
    rows = [[html.escape(c), f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}", str(m["support"])]
            for c, m in metrics["per_class"].items()]
    return _table(rows, ["class", "precision", "recall", "F1", "support"])


def comparison_table(summary: list[dict[str, Any]], headline: Headline | None = None) -> str:
    """Mean and 95% CI of the headline metric over seeds, the secondary metrics, cost."""
    h = headline or Headline()
    pct = "{:.1f} .. {:.1f}" if h.percent else "{:.3g} .. {:.3g}"
    rows = []
    for r in summary:
        ci = "—" if math.isnan(r["ci_low"]) else pct.format(r["ci_low"], r["ci_high"])
        second = [h.show(k, r[k]) for k, _ in h.secondary]
        rows.append([html.escape(r["method"]), str(r["n"]), h.show(h.key, r["value"]), ci, *second,
                     f"{r['seconds']:.1f}", f"{r['peak_mb']:.0f}", "yes" if r["transfer"] else "no"])
    labels = [label + (" %" if h.secondary_scale(k) == 100 else "") for k, label in h.secondary]
    return _table(rows, ["method", "N", h.column, "95% CI", *labels, "time (s)", "peak MiB", "transfer"])


def page(title: str, sections: list[tuple[str, str]], verdicts: list[str]) -> str:
    v = "".join(f'<p class="verdict{" bad" if "NOT" in s else ""}">{html.escape(s)}</p>' for s in verdicts)
    body = "".join(f"<h2>{html.escape(h)}</h2>{content}" for h, content in sections if content)
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>{_STYLE}"
            f"</head><body><h1>{html.escape(title)}</h1>{v}{body}{_CHECK_SCRIPT}</body></html>")


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _comparison_task_sections(comp: Any, test: Any) -> list[tuple[str, str]]:
    """What the best transfer run (largest size, first seed) shows about its test predictions,
    as its task has it: confusion matrix, per-class metrics and mistakes; per-label metrics;
    predicted-against-true and residual plots."""
    transfer = [m for m, r in comp.detail.items() if r.transfer]
    if not transfer:
        return []
    h = comp.headline
    best = max(transfer, key=lambda m: h.direction * h.value(comp.detail[m].metrics))
    run, at = comp.detail[best], f"(N={comp.sizes[-1]}, seed {comp.seeds[0]})"
    if "confusion_matrix" in run.metrics:
        return [(f"Confusion matrix: {best} {at}",
                 confusion_plot(run.metrics["confusion_matrix"], run.classes, f"{best}: confusion matrix")),
                (f"Per-class metrics: {best}", per_class_table(run.metrics)),
                (f"Most confidently wrong: {best}",
                 confidently_wrong(test.items, test.labels, run.proba, run.classes, test.modality))]
    if "per_label" in run.metrics:
        return [(f"Per-label metrics: {best} {at}", per_label_table(run.metrics))]
    if run.predictions is not None and hasattr(run.task, "encode_raw"):
        y = run.task.encode_raw(test.labels, test.origins, "test")
        return [(f"Predictions: {best} {at}",
                 "".join(regression_plots(y, np.asarray(run.predictions, dtype=float))))]
    return []


def write_comparison_report(comp: Any, test: Any, out_dir: str | Path, *, title: str,
                            data_report: Any = None) -> Path:
    """``report.html`` + ``metrics.json`` for a ``Comparison`` (``headstart compare``), in the
    task's headline metric."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = comp.summary()
    sections = [("Comparison", comparison_table(summary, comp.headline)),
                ("Learning curves", "".join(learning_curve_plots(summary, comp.headline)))]
    hist = history_plot({m: r.history for m, r in comp.detail.items()})
    sections.append((f"Training curves (N={comp.sizes[-1]}, seed {comp.seeds[0]})", hist or ""))
    sections += _comparison_task_sections(comp, test)
    if data_report is not None:
        sections.append(("Pre-flight data check", f"<pre>{html.escape(data_report.format())}</pre>"))
    atomic_write_text(out / "report.html", page(title, sections, comp.verdicts()))
    atomic_write_text(out / "metrics.json", json.dumps(_json_safe(comp.to_dict()), indent=2, default=str))
    return out / "report.html"


def regression_plots(y_true: np.ndarray, y_pred: np.ndarray) -> list[str]:
    """Predicted against true (the diagonal is perfect) and residuals against predicted."""
    out = []
    fig, ax = _figure(5.0, 4.5)
    ax.scatter(y_true, y_pred, s=12, alpha=0.6)
    lo, hi = float(min(y_true.min(), y_pred.min())), float(max(y_true.max(), y_pred.max()))
    ax.plot([lo, hi], [lo, hi], color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("true")
    ax.set_ylabel("predicted")
    ax.set_title("Predicted against true (test)")
    ax.grid(alpha=0.3)
    out.append(_img(_png(fig), "Predicted against true (test)"))
    fig, ax = _figure(5.0, 3.5)
    ax.scatter(y_pred, y_true - y_pred, s=12, alpha=0.6)
    ax.axhline(0, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("predicted")
    ax.set_ylabel("residual (true - predicted)")
    ax.set_title("Residuals (test)")
    ax.grid(alpha=0.3)
    out.append(_img(_png(fig), "Residuals (test)"))
    return out


def per_label_table(metrics: dict[str, Any]) -> str:
    rows = [[html.escape(c), f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}", str(m["support"]),
             f"{m['threshold']:.2f}"] for c, m in metrics["per_label"].items()]
    return _table(rows, ["label", "precision", "recall", "F1", "support", "threshold"])


def _result_row(est: Any, test: dict[str, Any], seconds: float) -> tuple[list[str], list[str]]:
    """(header, row) for the result table: the task's own headline metrics."""
    name = est.task_.name
    if "accuracy" in test:
        return (["model", "accuracy %", "macro-F1 %", "fit time (s)"],
                [f"{100 * test['accuracy']:.2f}", f"{100 * test['macro_f1']:.2f}", f"{seconds:.1f}"])
    if name == "regression":
        return (["model", "MAE", "RMSE", "R²", "fit time (s)"],
                [f"{test['mae']:.4g}", f"{test['rmse']:.4g}", f"{test['r2']:.4f}", f"{seconds:.1f}"])
    if "micro_f1" in test:
        return (["model", "micro-F1 %", "macro-F1 %", "mAP %", "subset accuracy %", "fit time (s)"],
                [f"{100 * test['micro_f1']:.2f}", f"{100 * test['macro_f1']:.2f}", f"{100 * test['map']:.2f}",
                 f"{100 * test['subset_accuracy']:.2f}", f"{seconds:.1f}"])
    label, value = est.task_.headline(test)
    return ["model", label, "fit time (s)"], [f"{value:.4g}", f"{seconds:.1f}"]


def task_sections(est: Any, test: dict[str, Any]) -> list[tuple[str, str]]:
    """What each task shows about its test predictions."""
    split = est.splits_.get("test")
    if "confusion_matrix" in test:
        out = [("Confusion matrix", confusion_plot(test["confusion_matrix"], est.classes_.tolist(),
                                                   "confusion matrix (test)")),
               ("Per-class metrics", per_class_table(test))]
        if split is not None:  # the measured model's outputs (the returned one may have trained on them)
            proba = getattr(est, "heldout_proba_", None)
            proba = est.predict_proba(split) if proba is None else proba
            out.append(("Most confidently wrong", confidently_wrong(
                split.items, split.labels, proba, est.classes_.tolist(), split.modality)))
        return out
    if est.task_.name == "regression" and split is not None:
        y = est.task_.encode_raw(split.labels, split.origins, "test")
        return [("Predictions", "".join(regression_plots(y, np.asarray(test["predictions"], dtype=float))))]
    if "per_label" in test:
        return [("Per-label metrics", per_label_table(test))]
    if "targets" in test:
        return [(f"Target {name}", f"<pre>{html.escape(est.task_.tasks[name].format_metrics(m))}</pre>")
                for name, m in test["targets"].items()]
    return []


def _pct(x: float | None) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}"


def _adaptation_tables(ad: Any) -> str:
    """Accuracy before/after per split, and the shift statistics before/after."""
    names = {"source_test": "source test split", "target_test": "target test (labels for evaluation only)"}
    rows = [[names.get(k, k), _pct(a["source_only"]), _pct(a["adapted"]),
             f"{100 * (a['adapted'] - a['source_only']):+.1f}"] for k, a in ad.accuracy.items()]
    if ad.final_target_accuracy is not None:
        cells = ["", ""]
        cells[ad.label_free["returned"] == "adapted"] = _pct(ad.final_target_accuracy)
        rows.append(["target test, the returned model (trained again on every source label)", *cells, ""])
    acc = _table(rows, ["accuracy %", "source-only", "adapted", "change (points)"])
    b, a = ad.shift_before, ad.shift_after
    shift = _table([["domain classifier accuracy % (50 = chance)", _pct(b.domain_accuracy), _pct(a.domain_accuracy)],
                    ["proxy A-distance (0 = indistinguishable, 2 = disjoint)", f"{b.proxy_a_distance:.3f}",
                     f"{a.proxy_a_distance:.3f}"],
                    ["MMD²", f"{b.mmd2:.4g}", f"{a.mmd2:.4g}"],
                    ["MMD permutation p-value", f"{b.p_value:.3g}", f"{a.p_value:.3g}"],
                    ["samples (source / target)", f"{b.n_source} / {b.n_target}", f"{a.n_source} / {a.n_target}"]],
                   ["shift statistic", "before (pretrained features)", "after (adapted features)"])
    return acc + shift


def _adaptation_plots(ad: Any, out: Path) -> str:
    """The domains' PCA plot before and after, written beside the report and embedded in it."""
    from headstart.adaptation.plot import plot_projection
    from headstart.adaptation.shift import p_text

    imgs = []
    for when, rep in (("before", ad.shift_before), ("after", ad.shift_after)):
        if when not in ad.projections:
            continue
        title = (f"{when}: domain accuracy {100 * rep.domain_accuracy:.0f}%, MMD² {rep.mmd2:.3g}, "
                 f"{p_text(rep.p_value)}")
        path = plot_projection(*ad.projections[when], out / f"adaptation-{when}.png", title=title)
        imgs.append(_img(base64.b64encode(path.read_bytes()).decode(), f"domains {when} adaptation"))
    return "".join(imgs)


def _adaptation_choice(ad: Any) -> str:
    lf, o = ad.label_free, ad.oracle
    s = lf["scores"]
    text = (f"Label-free pick ({lf['criterion']}): <b>{lf['pick']}</b> (source-only {s['source_only']:+.3f}, "
            f"adapted {s['adapted']:+.3f}); returned: <b>{lf['returned']}</b>"
            + ("" if lf["acts_on_it"] else f" (adapt={html.escape(str(ad.method))} returns the adapted model "
               "whatever the criterion says; adapt=auto acts on it)") + ". ")
    if o is None:
        return f"<p>{text}Oracle pick: unknown (no labeled target data; give target_test / --target-test).</p>"
    return (f"<p>{text}Oracle pick (higher target-test accuracy): <b>{o['pick']}</b>; the label-free pick is "
            f"{o['gap_points']:.1f} points below it (returned model: {o['returned_gap_points']:.1f}).</p>")


def _adaptation_per_class(ad: Any) -> str:
    from headstart.adaptation.summary import NEAR_ZERO

    def cell(x: float) -> str:
        return f"<b style='color:#c33'>{_pct(x)} ⚠ near 0</b>" if x <= NEAR_ZERO else _pct(x)

    rows = [[html.escape(r["class"]), str(r["support"]), cell(r["source_only"]), cell(r["adapted"]),
             f"{100 * (r['adapted'] - r['source_only']):+.1f}"] for r in ad.per_class]
    return ("<h3>Per-class target accuracy</h3>"
            + _table(rows, ["class", "support", "source-only %", "adapted %", "change (points)"])) if rows else ""


def adaptation_section(ad: Any, out: Path) -> str:
    """The "Domain adaptation" section (and ``adaptation.json`` + the two PCA plots in ``out``)."""
    atomic_write_text(out / "adaptation.json", json.dumps(_json_safe(ad.to_dict()), indent=2, default=str))
    intro = (f"<p>Method: <b>{html.escape(str(ad.method))}</b>. Source-only baseline: {html.escape(ad.baseline)}. "
             f"Shift after adaptation measured on {html.escape(ad.after_features)}.</p>")
    notes = "<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in ad.notes) + "</ul>"
    return (intro + _adaptation_tables(ad) + _adaptation_choice(ad) + _adaptation_plots(ad, out)
            + _adaptation_per_class(ad) + notes)


def adaptation_verdict(ad: Any) -> str | None:
    """One line for the top of the page, when target labels were given."""
    acc = ad.accuracy.get("target_test")
    if acc is None:
        return None
    gain = 100 * (acc["adapted"] - acc["source_only"])
    return (f"Adaptation ({ad.method}) {'beat' if gain > 0 else 'did NOT beat'} the source-only model on the "
            f"target test by {abs(gain):.1f} points ({_pct(acc['source_only'])}% -> {_pct(acc['adapted'])}%).")


def _audio_input_note(backbone: Any) -> str:
    """What an audio model heard: the rate every clip was resampled to, the window, the pooling."""
    cfg = backbone.pretrained_cfg
    if cfg.modality != "audio":
        return ""
    return (f"<p>Audio in: mono, resampled to {cfg.sampling_rate / 1000:g} kHz (the rate {html.escape(backbone.spec)}"
            f"'s weights were trained at), clips cut to {cfg.max_seconds:g} s, features pooled by "
            f"{html.escape(cfg.pooling)}.</p>")


def write_fit_report(est: Any, out_dir: str | Path) -> Path:
    """The same page for one ``fit``: its test metrics, training curves, confusion matrix,
    mistakes, the planner's ladder or the from-scratch comparison when there is one."""
    out = Path(out_dir)
    m = est.metrics_
    verdicts, sections = [], []
    test = m.get("test")
    rows = []
    header = ["model", "fit time (s)"]
    if test is not None:
        header, cells = _result_row(est, test, m["fit_seconds"])
        rows.append([html.escape(f"{est.model_.backbone.spec} / {est.strategy_.name if est.strategy_ else '?'}"),
                     *cells])
    if "scratch" in m and m["scratch"].get("accuracy") is not None:
        s = m["scratch"]
        rows.append([html.escape(f"{s['backbone']} (from scratch)"), f"{100 * s['accuracy']:.2f}",
                     f"{100 * s['macro_f1']:.2f}", f"{s['fit_seconds']:.1f}"])
        if test is not None:
            gain = 100 * (test["accuracy"] - s["accuracy"])
            verdicts.append(f"Transfer {'beat' if gain > 0 else 'did NOT beat'} training from scratch by "
                            f"{abs(gain):.1f} points on this split (one seed: no interval; "
                            "run `headstart compare` for several).")
    if rows:
        note = f"<p>{html.escape(m['estimate'])}.</p>" if m.get("estimate") else ""
        sections.append(("Result", _table(rows, header) + note + _audio_input_note(est.model_.backbone)))
    plan = getattr(est, "plan_", None)
    if plan is not None:
        prow = [[t.rung, f"{t.fidelity:g}", f"{100 * t.val_accuracy:.2f}", f"{t.seconds:.1f}"] for t in plan.trials]
        sections.append(("Planner ladder", _table(prow, ["rung", "budget", "validation accuracy %", "seconds"])
                         + "<ul>" + "".join(f"<li>{html.escape(d)}</li>" for d in plan.decisions) + "</ul>"))
        verdicts.append(f"Planner pick: {plan.pick}" + (" — negative transfer: scratch won" if plan.negative_transfer
                                                        else ""))
    ad = getattr(est, "adaptation_", None)
    if ad is not None:
        out.mkdir(parents=True, exist_ok=True)
        sections.append(("Domain adaptation", adaptation_section(ad, out)))
        verdicts += [v for v in (adaptation_verdict(ad),) if v]
    sections.append(("Training curves", history_plot({"this run": est.history_}) or ""))
    if test is not None:
        sections += task_sections(est, test)
    rep = getattr(est, "data_report_", None)
    if rep is not None:
        sections.append(("Pre-flight data check", f"<pre>{html.escape(rep.format())}</pre>"))
    atomic_write_text(out / "report.html", page(f"headstart fit: {est.model_.backbone.spec}", sections, verdicts))
    atomic_write_text(out / "metrics.json", json.dumps(_json_safe({k: v for k, v in m.items()}), indent=2, default=str))
    return out / "report.html"

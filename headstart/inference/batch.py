"""Batch prediction at scale: any number of inputs streamed through the model into a CSV, one
batch at a time, with constant memory (images are decoded by loader workers, texts tokenized a
chunk at a time), a row per input (an ``error`` column names what could not be read), and a
resume that continues where an interrupted run stopped and writes exactly the file an
uninterrupted run writes.

Resume: after every batch the CSV is flushed and ``<out>.progress`` records its byte length and
row count (written atomically). A resumed run truncates the CSV to that length and starts at the
next batch, so every batch holds the same inputs as in an uninterrupted run (batch composition
can change a float's last bits). Under ``accelerate launch`` each process predicts one
contiguous shard into ``<out>.part<K>`` and the main process joins the parts in order."""
from __future__ import annotations

import csv
import io
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from headstart.data._base import LabeledData
from headstart.data.audio import AudioDecoder, AudioTransform, audio_batch
from headstart.data.images import BadSampleError, ImageTransform, load_image
from headstart.data.loaders import make_loader
from headstart.inference.records import flat_row, records

TEXT_CHUNK = 4096  # texts tokenized at a time (a multiple of any sensible batch size)


class _Tolerant(Dataset):
    """(tensor, "") per image or clip, or (None, why) when it cannot be read: one bad file costs
    one row."""

    def __init__(self, data: LabeledData, decode: Any, transform: Any) -> None:
        self.data, self.decode, self.transform = data, decode, transform

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> tuple[torch.Tensor | None, str]:
        try:
            return self.transform(self.decode(self.data.items[i], self.data.origins[i])), ""
        except BadSampleError as e:
            return None, str(e)


def _collate(pairs: list[tuple[torch.Tensor | None, str]]) -> tuple[torch.Tensor | None, list[str]]:
    good = [t for t, _ in pairs if t is not None]
    return (torch.stack(good) if good else None), [e for _, e in pairs]


def _collate_audio(pairs: list[tuple[torch.Tensor | None, str]]) -> tuple[dict | None, list[str]]:
    good = [(t, 0) for t, _ in pairs if t is not None]
    return (audio_batch(good)["inputs"] if good else None), [e for _, e in pairs]


def _tolerant_loader(data: LabeledData, cfg: Any, batch_size: int, num_workers: int) -> DataLoader:
    """Images or audio clips decoded by loader workers, bad files kept as (None, why)."""
    if data.modality == "audio":
        ds, collate = _Tolerant(data, AudioDecoder(cfg.sampling_rate), AudioTransform(cfg)), _collate_audio
    else:
        ds, collate = _Tolerant(data, load_image, ImageTransform(cfg)), _collate
    return DataLoader(ds, batch_size=batch_size, num_workers=num_workers, collate_fn=collate)


def _batches(est: Any, data: LabeledData, start: int, batch_size: int,
             num_workers: int) -> Iterator[tuple[Any, list[str]]]:
    """(inputs of the readable items, one error string per item) for each batch from ``start``."""
    bb = est.model_.backbone
    rest = data.subset(range(start, len(data)))
    if data.modality in ("image", "audio"):
        yield from _tolerant_loader(rest, bb.pretrained_cfg, batch_size, num_workers)
        return
    for c in range(0, len(rest), TEXT_CHUNK):
        part = rest.subset(range(c, min(c + TEXT_CHUNK, len(rest))))
        bad = ["" if part.modality != "text" or (isinstance(t, str) and t.strip()) else f"{o}: empty text"
               for t, o in zip(part.items, part.origins)]  # texts, and in-memory items (time series)
        part = LabeledData([t if not b else " " for t, b in zip(part.items, bad)], None, part.modality, part.origins)
        loader = make_loader(part, None, bb.pretrained_cfg, bb.tokenizer(), train=False, batch_size=batch_size)
        for j, batch in enumerate(loader):
            yield batch["inputs"], bad[j * batch_size:(j + 1) * batch_size]


def _columns(est: Any, ood_score: bool = False) -> list[str]:
    task = est.task_
    if task.name == "multitask":
        pred = list(task.tasks)
    else:
        pred = ["label"] if task.proba else ["value"]
    probs = [f"p_{c}" for c in task.classes_] if task.proba else []
    return ["input", *pred, *probs, *(["ood_score"] if ood_score else []), "error"]


class _InputCheck:
    """The streamed side of ``Headstart``'s input check: each batch's pooled features projected on
    the bundle's feature reference, a uniform sample kept for the batch verdict at the end, and
    per-input OOD scores when asked for. Nothing without a reference (older bundles)."""

    def __init__(self, est: Any, scores: bool) -> None:
        from headstart.adaptation.reference import Reservoir

        self.ref = getattr(est, "reference_", None)
        if scores and self.ref is None:
            raise ValueError("--ood-score: this bundle has no feature reference (bundles written before it have "
                             "none); fit it again to get OOD scores")
        self.scores, self.sample = scores, Reservoir()

    def batch(self, features: torch.Tensor) -> list[float]:
        if self.ref is None:
            return []
        proj = self.ref.project(features.float().cpu())
        self.sample.add(proj)
        return self.ref.scores(proj).tolist() if self.scores else []

    def finish(self, est: Any) -> None:
        """``est.input_check_``: the verdict on this run's inputs; a clear shift warns."""
        import warnings

        from headstart.adaptation.reference import InputShiftWarning

        est.input_check_ = self.ref.check(self.sample.rows, n=self.sample.seen) if self.ref is not None else None
        if est.input_check_ is not None and est.input_check_.shifted:
            warnings.warn(est.input_check_.message(), InputShiftWarning, stacklevel=3)


class _Progress:
    """A live bar on a terminal; a line every 10% (and at the end) otherwise, so logs stay short."""

    def __init__(self, total: int, done: int, enabled: bool) -> None:
        self.total, self.done, self.enabled = total, done, enabled
        self.t0, self.start, self.next_pct = time.perf_counter(), done, 10
        self.tty = enabled and sys.stderr.isatty()

    def update(self, n: int) -> None:
        self.done += n
        if not self.enabled:
            return
        pct = 100 * self.done / max(1, self.total)
        rate = (self.done - self.start) / max(1e-9, time.perf_counter() - self.t0)
        line = f"predict: {self.done}/{self.total} ({pct:.0f}%, {rate:.0f} inputs/s)"
        if self.tty:
            sys.stderr.write("\r" + line + ("\n" if self.done >= self.total else ""))
        elif pct >= self.next_pct or self.done >= self.total:
            sys.stderr.write(line + "\n")
            self.next_pct = (int(pct) // 10 + 1) * 10
        sys.stderr.flush()


def _progress_path(out: Path) -> Path:
    return out.with_name(out.name + ".progress")


def _resume_point(out: Path, header: list[str], names: list[str], resume: bool) -> tuple[int, int]:
    """(rows already written, byte length to keep). Checks the kept rows are these inputs."""
    prog = _progress_path(out)
    if not resume or not out.exists():
        return 0, 0
    if not prog.exists():
        raise ValueError(f"{out} exists but {prog.name} does not: nothing to resume (a finished run removes "
                         "it); remove the file or choose another --out")
    state = json.loads(prog.read_text())
    rows, size = int(state["rows"]), int(state["bytes"])
    if state.get("total") != len(names):
        raise ValueError(f"{out}: the interrupted run had {state.get('total')} inputs, this one {len(names)}: "
                         "not the same inputs, so it cannot resume")
    with open(out, "rb") as f:
        kept = f.read(size).decode("utf-8")
    got = list(csv.reader(io.StringIO(kept)))
    if not got or got[0] != header or len(got) - 1 != rows:
        raise ValueError(f"{out} does not match its progress file ({rows} rows, columns {header}); "
                         "remove both and start again")
    for k, row in enumerate(got[1:]):
        if row[0] != names[k]:
            raise ValueError(f"{out} row {k + 2}: input {row[0]!r}, but this run's input {k + 1} is "
                             f"{names[k]!r}: not the same inputs, so it cannot resume")
    return rows, size


def _write_progress(out: Path, rows: int, size: int, total: int) -> None:
    tmp = _progress_path(out).with_suffix(".tmp")
    tmp.write_text(json.dumps({"rows": rows, "bytes": size, "total": total}))
    os.replace(tmp, _progress_path(out))


def _predict_shard(est: Any, data: LabeledData, out: Path, *, resume: bool, batch_size: int,
                   num_workers: int, device: torch.device, progress: bool, ood_score: bool = False) -> int:
    header = _columns(est, ood_score)
    check = _InputCheck(est, ood_score)
    names = [str(it) for it in data.items]
    done, size = _resume_point(out, header, names, resume)
    model = est.model_.to(device).eval()
    bar = _Progress(len(data), done, progress)
    with open(out, "r+b" if done else "wb") as f:
        f.truncate(size)
        f.seek(size)
        text = io.TextIOWrapper(f, encoding="utf-8", newline="", write_through=True)
        writer = csv.DictWriter(text, fieldnames=header, extrasaction="ignore")
        if not done:
            writer.writeheader()
            _write_progress(out, 0, f.tell(), len(data))
        i = done
        for inputs, errors in _batches(est, data, done, batch_size, num_workers):
            recs: list[dict[str, Any]] = []
            scores: list[float] = []
            if inputs is not None:
                inputs = {k: v.to(device) for k, v in inputs.items()} if isinstance(inputs, dict) else inputs.to(device)
                with torch.inference_mode():
                    output = model(inputs)
                recs, scores = records(est.task_, output.logits.float().cpu()), check.batch(output.features)
            good, score = iter(recs), iter(scores)
            for err in errors:
                row = {"input": names[i], "error": err} if err else {
                    **flat_row(names[i], next(good), est.data_.label_separator), "error": ""}
                if ood_score and not err:
                    row["ood_score"] = round(next(score), 4)
                writer.writerow(row)
                i += 1
            text.flush()
            _write_progress(out, i, f.tell(), len(data))
            bar.update(len(errors))
        text.detach()
    check.finish(est)
    return i - done


def predict_to_csv(est: Any, data: LabeledData, out: str | Path, *, resume: bool = False, batch_size: int = 64,
                   num_workers: int | str = "auto", progress: bool = True, ood_score: bool = False) -> int:
    """Predict every input of ``data`` (a fitted or loaded Headstart's modality) into ``out``;
    returns the number of rows written by this call. ``resume`` continues an interrupted run.
    With a feature reference in the bundle, the inputs are checked against the fitted-for data
    on the way (``est.input_check_``; a clear shift warns); ``ood_score`` adds a column of
    per-input OOD scores."""
    from accelerate import PartialState

    from headstart.api import auto_workers

    out = Path(out)
    if len(data) == 0:
        raise ValueError("nothing to predict: no inputs")
    workers = auto_workers(data.modality, len(data)) if num_workers == "auto" else int(num_workers)
    # cpu=True on a CPU model: Accelerate then sets up the gloo process group torchrun asks for
    state = PartialState(cpu=next(est.model_.parameters()).device.type == "cpu")
    if state.num_processes == 1:
        n = _predict_shard(est, data, out, resume=resume, batch_size=batch_size, num_workers=workers,
                           device=next(est.model_.parameters()).device, progress=progress, ood_score=ood_score)
        _progress_path(out).unlink(missing_ok=True)
        return n
    bounds = np.linspace(0, len(data), state.num_processes + 1).round().astype(int)
    lo, hi = bounds[state.process_index], bounds[state.process_index + 1]
    part = out.with_name(f"{out.name}.part{state.process_index}")
    n = _predict_shard(est, data.subset(range(lo, hi)), part, resume=resume, batch_size=batch_size,
                       num_workers=workers, device=state.device, progress=progress and state.is_main_process,
                       ood_score=ood_score)
    state.wait_for_everyone()
    if state.is_main_process:
        _join([out.with_name(f"{out.name}.part{k}") for k in range(state.num_processes)], out)
    state.wait_for_everyone()
    return n


def _join(parts: list[Path], out: Path) -> None:
    """The shards' rows in order under one header; the parts and their progress files removed."""
    tmp = out.with_name(out.name + ".joining")
    with open(tmp, "wb") as dst:
        for k, p in enumerate(parts):
            with open(p, "rb") as src:
                header = src.readline()
                if k == 0:
                    dst.write(header)
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
    os.replace(tmp, out)
    for p in parts:
        p.unlink()
        _progress_path(p).unlink(missing_ok=True)

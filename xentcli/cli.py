"""The `xent` command line: options in, a rendered loss out, errors as exit codes.

This is the one place where XentError becomes ``xent: error: ...`` on stderr
and an exit code.
"""

from __future__ import annotations

import enum
import io
import math
import os
import sys
import traceback
from dataclasses import dataclass
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperGroup
from typer.exceptions import TyperException

from . import __version__
from .errors import ExitCode, XentError


class Format(str, enum.Enum):
    table = "table"
    json = "json"
    csv = "csv"
    tsv = "tsv"
    yaml = "yaml"
    value = "value"


class InputKind(str, enum.Enum):
    logits = "logits"
    probs = "probs"
    log_probs = "log-probs"


class ReductionChoice(str, enum.Enum):
    mean = "mean"
    sum = "sum"
    none = "none"


class Backend(str, enum.Enum):
    auto = "auto"
    numpy = "numpy"
    torch = "torch"


class Device(str, enum.Enum):
    cpu = "cpu"
    cuda = "cuda"
    auto = "auto"


class DType(str, enum.Enum):
    float32 = "float32"
    float64 = "float64"


class _XentGroup(TyperGroup):
    """Runs a command and turns every way it can end into one exit code."""

    def main(self, args: Any = None, prog_name: str | None = None, **extra: Any) -> Any:
        extra.pop("standalone_mode", None)
        argv = list(sys.argv[1:] if args is None else args)
        try:
            code = super().main(args=argv, prog_name=prog_name or "xent", standalone_mode=False, **extra)
        except XentError as error:
            if "--debug" in argv:
                traceback.print_exc()
            _fail(str(error))
            code = ExitCode.USAGE
        except TyperException as error:
            _fail(error.format_message())
            context = getattr(error, "ctx", None)
            if context is not None:
                print(f"Try '{context.command_path} --help' for help.", file=sys.stderr)
            code = getattr(error, "exit_code", ExitCode.USAGE)
        except BrokenPipeError:
            # The reader went away (`xent ... | head -1`): end quietly.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            code = ExitCode.OK
        sys.exit(int(code or 0))


def _fail(message: str) -> None:
    print(f"xent: error: {message}", file=sys.stderr)


def _notice(message: str) -> None:
    print(f"xent: {message}", file=sys.stderr)


app = typer.Typer(
    cls=_XentGroup,
    name="xent",
    help="Compute and explain cross-entropy losses on data files, exactly as PyTorch does.",
    no_args_is_help=False,
    add_completion=True,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        print(f"xent {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        Optional[bool],
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit."),
    ] = None,
) -> None:
    """Compute and explain cross-entropy losses on data files, exactly as PyTorch does."""


# Options shared by every command that reads a batch.
LogitsArg = Annotated[
    Optional[str],
    typer.Argument(help="Logits (or probs / log-probs) file: CSV, TSV, TXT, NPY, NPZ, .gz; '-' for stdin.", show_default=False),
]
LabelsArg = Annotated[
    Optional[str],
    typer.Argument(help="Labels file: class indices, class names or soft labels; '-' for stdin.", show_default=False),
]
InputOpt = Annotated[Optional[InputKind], typer.Option("--input", "-i", help="What LOGITS holds. [default: logits]", show_default=False)]
WeightOpt = Annotated[Optional[str], typer.Option("--weight", "-w", help="Class weights: a file or a list like 1,2,0.5.")]
IgnoreOpt = Annotated[Optional[int], typer.Option("--ignore-index", help="Target value to ignore. [default: -100]", show_default=False)]
SmoothingOpt = Annotated[Optional[float], typer.Option("--label-smoothing", help="Label smoothing in [0, 1]. [default: 0]", show_default=False)]
ReductionOpt = Annotated[Optional[ReductionChoice], typer.Option("--reduction", "-r", help="[default: mean]", show_default=False)]
ClassesOpt = Annotated[Optional[str], typer.Option("--classes", help="Class names, in order: a,b,c.")]
LabelColOpt = Annotated[Optional[str], typer.Option("--label-col", help="The labels are this column (name or 0-based index) of LOGITS.")]
KeyOpt = Annotated[Optional[str], typer.Option("--key", help="The NPZ array holding the logits.")]
ClassAxisOpt = Annotated[Optional[int], typer.Option("--class-axis", help="Axis of the classes (-1 for (batch, seq, vocab)). [default: 1]", show_default=False)]
DTypeOpt = Annotated[Optional[DType], typer.Option("--dtype", help="Compute in this dtype. [default: the input's]", show_default=False)]
DelimiterOpt = Annotated[Optional[str], typer.Option("--delimiter", help="Text delimiter: , ; tab or space. [default: sniffed]", show_default=False)]
HeaderOpt = Annotated[Optional[bool], typer.Option("--header/--no-header", help="Force a header row on or off. [default: detected]", show_default=False)]
BackendOpt = Annotated[Optional[Backend], typer.Option("--backend", help="[default: auto]", show_default=False)]
DeviceOpt = Annotated[Optional[Device], typer.Option("--device", help="[default: cpu]", show_default=False)]
PrecisionOpt = Annotated[int, typer.Option("--precision", min=0, max=17, help="Decimals in the table.")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show a traceback on errors.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No notices or warnings on stderr.")]

DELIMITER_NAMES = {"tab": "\t", "\\t": "\t", "space": None, "whitespace": None}


@dataclass(frozen=True)
class BatchOptions:
    """How to read the inputs and compute the loss, with every default resolved."""

    logits: str | None = None
    labels: str | None = None
    input: str = "logits"
    weight: str | None = None
    ignore_index: int = -100
    label_smoothing: float = 0.0
    reduction: str = "mean"
    classes: tuple[str, ...] | None = None
    label_col: str | None = None
    key: str | None = None
    class_axis: int = 1
    dtype: str | None = None
    delimiter: str | None = None
    header: bool | None = None
    backend: str = "auto"
    device: str = "cpu"

    @classmethod
    def from_cli(cls, **given: Any) -> BatchOptions:
        values = {k: (v.value if isinstance(v, enum.Enum) else v) for k, v in given.items() if v is not None}
        if "classes" in values:
            values["classes"] = tuple(c.strip() for c in values["classes"].split(","))
        if "delimiter" in values:
            text = values["delimiter"]
            values["delimiter"] = DELIMITER_NAMES.get(text.lower(), text)
        return cls(**values)

    def engine_options(self) -> dict[str, Any]:
        """What the JSON reports under "options": every setting that moves the number."""
        return {
            "input": self.input,
            "weight": self.weight,
            "ignore_index": self.ignore_index,
            "label_smoothing": self.label_smoothing,
            "class_axis": self.class_axis,
        }


def _compute(options: BatchOptions, quiet: bool):
    from .inputs import example_batch, load_batch, read_weights
    from .loss import cross_entropy

    if options.logits is None:
        if options.labels is not None:
            raise XentError("LABELS given without LOGITS")
        if not quiet:
            _notice("no input given: using the bundled example (the seed notebook's 3×5 batch, targets [3, 0, 2])")
        batch = example_batch()
    else:
        batch = load_batch(
            options.logits,
            options.labels,
            key=options.key,
            label_col=options.label_col,
            classes=options.classes,
            class_axis=options.class_axis,
            delimiter=options.delimiter,
            header=options.header,
            dtype=options.dtype,
        )
    weight = read_weights(options.weight) if options.weight else None
    result = cross_entropy(
        batch.logits,
        batch.target,
        weight=weight,
        ignore_index=options.ignore_index,
        reduction=options.reduction,
        label_smoothing=options.label_smoothing,
        input=options.input,
        class_axis=batch.class_axis,
        backend=options.backend,
        device=options.device,
        dtype=options.dtype,
        locate_logits=batch.locate_logits,
        locate_labels=batch.locate_labels,
    )
    if not quiet:
        for warning in result.warnings:
            _notice(f"warning: {warning}")
    return batch, result


@app.command()
def compute(
    logits: LogitsArg = None,
    labels: LabelsArg = None,
    input: InputOpt = None,
    weight: WeightOpt = None,
    ignore_index: IgnoreOpt = None,
    label_smoothing: SmoothingOpt = None,
    reduction: ReductionOpt = None,
    classes: ClassesOpt = None,
    label_col: LabelColOpt = None,
    key: KeyOpt = None,
    class_axis: ClassAxisOpt = None,
    dtype: DTypeOpt = None,
    delimiter: DelimiterOpt = None,
    header: HeaderOpt = None,
    backend: BackendOpt = None,
    device: DeviceOpt = None,
    format: Annotated[
        Format, typer.Option("--format", "-f", envvar="XENT_FORMAT", help="Output format.")
    ] = Format.table,
    per_row: Annotated[bool, typer.Option("--per-row", help="Include per-row numbers in json/yaml.")] = False,
    rows: Annotated[int, typer.Option("--rows", min=0, help="Rows shown in the table (head and tail); 0 = all.")] = 20,
    precision: PrecisionOpt = 4,
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="Write the output to FILE (atomically).")] = None,
    fail_above: Annotated[
        Optional[float], typer.Option("--fail-above", help="Exit 1 if the reduced loss is above X (or NaN).")
    ] = None,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Compute the loss over a batch and show it per row."""
    options = BatchOptions.from_cli(
        logits=logits, labels=labels, input=input, weight=weight, ignore_index=ignore_index,
        label_smoothing=label_smoothing, reduction=reduction, classes=classes, label_col=label_col,
        key=key, class_axis=class_axis, dtype=dtype, delimiter=delimiter, header=header,
        backend=backend, device=device,
    )
    batch, result = _compute(options, quiet)
    from . import render

    report = render.Report(result, batch, options.engine_options())
    _emit(report, format, per_row=per_row, rows=rows, precision=precision, output=output)
    gated = result.mean if result.loss is None else result.loss
    if fail_above is not None and (math.isnan(gated) or gated > fail_above):
        _notice(f"loss {gated!r} is above --fail-above {fail_above!r}")
        raise typer.Exit(ExitCode.GATE_FAILED)


def _emit(report, format: Format, *, per_row: bool, rows: int, precision: int, output: str | None) -> None:
    from . import render

    if format is Format.table:
        text = _table_text(report, rows, precision, to_file=output is not None)
        if text is None:
            return
    elif format is Format.json:
        text = render.to_json(report, per_row)
    elif format is Format.yaml:
        text = render.to_yaml(report, per_row)
    elif format in (Format.csv, Format.tsv):
        text = render.to_csv(report, "," if format is Format.csv else "\t")
    else:
        text = render.to_value(report)
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        try:
            render.write_atomically(output, text)
        except OSError as error:
            raise XentError(f"cannot write: {error.strerror}", output) from None


def _table_text(report, rows: int, precision: int, to_file: bool) -> str | None:
    """Print the table to the terminal, or return it as plain text for a file."""
    from rich.console import Console

    from . import render
    from .loss import ClassRows, softmax

    shown, hidden = render.shown_positions(report.result.rows, rows)
    probabilities = softmax(
        ClassRows(report.batch.logits, report.batch.class_axis).take(shown).astype(report.result.dtype),
        report.options["input"],
    )
    console = Console(file=io.StringIO(), width=120, color_system=None) if to_file else Console()
    console.print(render.table(report, probabilities, shown, hidden, precision, console.width))
    return console.file.getvalue() if to_file else None


def main() -> None:
    app(prog_name="xent")

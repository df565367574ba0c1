"""The `xent` command line: options in, a rendered loss out, errors as exit codes.

This is the one place where XentError becomes ``xent: error: ...`` on stderr
and an exit code.
"""

import enum
import io
import math
import os
import re
import shlex
import sys
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperGroup
from typer.exceptions import TyperException

from . import __version__
from .choices import BACKENDS, CONVENTIONS, DEFAULT_MAX_BYTES, DEVICES, DTYPES, FORMATS, INPUT_KINDS, RANGES, REDUCTIONS, TASKS
from .render.display import printable
from .errors import ExitCode, XentError
from .render.output import Streams, check_writable, discard, refuse_overwriting_inputs, say, write_output


def _choice(name: str, values: tuple[str, ...]) -> type[enum.Enum]:
    """A Typer choice built from the core's tuple (choices.py), so the two cannot drift."""
    return enum.Enum(name, [(value, value) for value in values], type=str)


Format = _choice("Format", FORMATS["compute"])
ExplainFormat = _choice("ExplainFormat", FORMATS["explain"])
CompareFormat = _choice("CompareFormat", FORMATS["compare"])
InputKind = _choice("InputKind", INPUT_KINDS)
Task = _choice("Task", TASKS)
ReductionChoice = _choice("ReductionChoice", REDUCTIONS)
Backend = _choice("Backend", BACKENDS)
Device = _choice("Device", DEVICES)
ConventionChoice = _choice("ConventionChoice", CONVENTIONS)
DType = _choice("DType", DTYPES)


class _XentGroup(TyperGroup):
    """Runs a command and turns every way it can end into one exit code."""

    def main(self, args: Any = None, prog_name: str | None = None, **extra: Any) -> Any:
        extra.pop("standalone_mode", None)
        argv = list(sys.argv[1:] if args is None else args)
        try:
            _refuse_files_as_command(argv, self.commands)
            code = super().main(args=argv or ["--help"], prog_name=prog_name or "xent", standalone_mode=False, **extra)
            if code == ExitCode.INTERRUPTED:  # typer turns Ctrl-C into this code
                _notice("interrupted")
        except XentError as error:
            if "--debug" in argv:
                traceback.print_exc()
            _fail(str(error))
            code = ExitCode.USAGE
        except TyperException as error:
            context = getattr(error, "ctx", None)
            hint = f" (see '{context.command_path} --help')" if context is not None else ""
            _fail(error.format_message() + hint)
            code = getattr(error, "exit_code", ExitCode.USAGE)
        except SystemExit as stop:
            # typer ends a closed pipe (`xent ... | head -1`) with exit 1: end it quietly, with 0.
            if not isinstance(stop.__context__, BrokenPipeError):
                raise
            discard(sys.stdout)
            code = ExitCode.OK
        except KeyboardInterrupt:
            _notice("interrupted")
            code = ExitCode.INTERRUPTED
        except Exception as error:  # a bug: still one line, and the traceback on request
            if "--debug" in argv:
                traceback.print_exc()
            _fail(f"internal error: {type(error).__name__}: {error} (a bug in xent: --debug shows the traceback)")
            code = ExitCode.INTERNAL
        sys.exit(int(code or 0))


COMMAND_WORD = re.compile(r"[a-z][a-z-]*")


def _refuse_files_as_command(argv: list[str], commands: Mapping[str, Any]) -> None:
    """`xent L.csv Y.csv`: files where the command belongs; say which was meant.
    A mistyped command word is left to click ("Did you mean 'compute'?")."""
    if not argv or argv[0] in commands or (argv[0].startswith("-") and argv[0] != "-"):
        return
    if os.path.exists(argv[0]) or not COMMAND_WORD.fullmatch(argv[0]):
        meant = shlex.join(["xent", "compute", *argv])
        raise XentError(f"no command {argv[0]!r} (did you mean {meant!r}?)")


def _fail(message: str) -> None:
    _to_stderr(f"xent: error: {message}")


def _notice(message: str) -> None:
    _to_stderr(f"xent: {message}")


def _to_stderr(line: str) -> None:
    """One line on stderr, its control characters escaped (ESC as \\x1b), so that
    a file name or a header cell never drives the terminal. A stderr that cannot
    take the line does not change the exit code."""
    say(printable(line))


app = typer.Typer(
    cls=_XentGroup,
    name="xent",
    help="Compute and explain cross-entropy losses on data files, exactly as PyTorch does.",
    no_args_is_help=False,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts are plain: "[default: ...]" is not markup
)


def _version(value: bool) -> None:
    if value:
        write_output(f"xent {__version__}\n", None)
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        Optional[bool],
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit."),
    ] = None,
) -> None:
    """Compute and explain cross-entropy losses on data files, exactly as PyTorch does."""


# Options shared by every command that reads a batch. Every default is None,
# so that an option left out falls through to xent.yaml, then to Settings.
LogitsArg = Annotated[
    Optional[str],
    typer.Argument(help="Logits (or probs / log-probs) file: CSV, TSV, TXT, NPY, NPZ, .pt, .gz; '-' for stdin.", show_default=False),
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
LabelsKeyOpt = Annotated[Optional[str], typer.Option("--labels-key", help="The NPZ array holding the labels. [default: labels, targets, target, label or y]", show_default=False)]
IdColOpt = Annotated[Optional[str], typer.Option("--id-col", help="Column(s) of row ids, not classes: NAME or a,b (id, *_id, index and pandas' index are found by name).")]
MaxBytesOpt = Annotated[Optional[int], typer.Option("--max-bytes", min=RANGES["max_bytes"][0], help="Refuse to inflate or read from a stream more than this many bytes. [default: 4 GiB]", show_default=False)]
ClassAxisOpt = Annotated[Optional[int], typer.Option("--class-axis", help="Axis of the classes (-1 for (batch, seq, vocab)). [default: 1]", show_default=False)]
DTypeOpt = Annotated[Optional[DType], typer.Option("--dtype", help="Compute in this dtype. [default: the input's]", show_default=False)]
DelimiterOpt = Annotated[Optional[str], typer.Option("--delimiter", help="Text delimiter: , ; tab or space. [default: sniffed]", show_default=False)]
HeaderOpt = Annotated[Optional[bool], typer.Option("--header/--no-header", help="Force a header row on or off. [default: detected]", show_default=False)]
ConventionOpt = Annotated[Optional[ConventionChoice], typer.Option("--convention", help="Whose definition of the loss to follow. [default: torch]", show_default=False)]
SampleWeightOpt = Annotated[Optional[str], typer.Option("--sample-weight", help="Per-row weights: a file with one number per row (Keras / scikit-learn style).")]
BackendOpt = Annotated[Optional[Backend], typer.Option("--backend", help="[default: auto: numpy on cpu, torch on cuda]", show_default=False)]
DeviceOpt = Annotated[Optional[Device], typer.Option("--device", help="[default: cpu]", show_default=False)]
PrecisionOpt = Annotated[Optional[int], typer.Option("--precision", min=RANGES["precision"][0], max=RANGES["precision"][1], help="Decimals shown. [default: 4]", show_default=False)]
ConfigOpt = Annotated[Optional[str], typer.Option("--config", help="Read options from this YAML file. [default: xent.yaml or .xent.yaml here or above; $XENT_CONFIG]", show_default=False)]
NoConfigOpt = Annotated[bool, typer.Option("--no-config", help="Ignore any config file.")]
QuietOpt = Annotated[Optional[bool], typer.Option("--quiet", "-q", help="No notices or warnings on stderr.")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show a traceback on errors.")]
TaskOpt = Annotated[Optional[Task], typer.Option("--task", help="multiclass (softmax), binary (one score per row) or multilabel (a sigmoid per class). [default: auto: binary for one score per row, else multiclass]", show_default=False)]
PosWeightOpt = Annotated[Optional[str], typer.Option("--pos-weight", help="torch's pos_weight for binary / multilabel logits: one number, or one per class (1,2,3).")]
ThresholdOpt = Annotated[Optional[float], typer.Option("--threshold", min=RANGES["threshold"][0], max=RANGES["threshold"][1], help="Binary tasks: p(positive) at or above this predicts the positive class. [default: 0.5]", show_default=False)]
FocalGammaOpt = Annotated[Optional[float], typer.Option("--focal-gamma", min=RANGES["focal_gamma"][0], help="Binary / multilabel: the focal loss with this γ (Keras' BinaryFocalCrossentropy, optax's sigmoid_focal_loss).")]
ZLossOpt = Annotated[Optional[float], typer.Option("--z-loss", min=RANGES["z_loss"][0], help="Add PaLM's z-loss: COEF · logsumexp(logits)² per counted position (reported apart).")]
SoftcapOpt = Annotated[Optional[float], typer.Option("--softcap", help="Gemma 2's final-logit soft-capping first: CAP · tanh(logits / CAP).")]
TemperatureOpt = Annotated[Optional[float], typer.Option("--temperature", help="Divide the logits by T (after --softcap).")]
LogitsColsOpt = Annotated[Optional[str], typer.Option("--logits-cols", help="Parquet/Arrow: the logit columns, a glob (p_*) or a list (a,b,c).")]
SchedulerOpt = Annotated[Optional[str], typer.Option("--scheduler", help="Run the files as tasks on a Dask cluster: its address (tcp://host:8786), or local.")]
ShiftOpt = Annotated[Optional[bool], typer.Option("--shift", help="Causal LM: the logits at position t predict the label at t + 1 (as Hugging Face shifts them).")]
MaskOpt = Annotated[Optional[str], typer.Option("--mask", help="A file of 1 (count) / 0 (ignore) per label, as an attention mask.")]
FocalAlphaOpt = Annotated[Optional[float], typer.Option("--focal-alpha", min=RANGES["focal_alpha"][0], max=RANGES["focal_alpha"][1], help="The focal loss' class balance: α for positives, 1 - α for negatives.")]

DELIMITER_NAMES = {"tab": "\t", "\\t": "\t", "space": None, "whitespace": None}
EXAMPLE_NOTICE = "no input given: using the bundled 3×5 example (targets [3, 0, 2])"


# The settings that can change the loss: reported in the JSON's options with where each came from.
NUMBER_SETTINGS = (
    "input", "weight", "ignore_index", "label_smoothing", "reduction", "class_axis", "convention",
    "sample_weight", "dtype", "classes", "header", "label_col", "id_col", "task", "pos_weight", "threshold",
    "focal_gamma", "focal_alpha", "shift", "mask", "z_loss", "softcap", "temperature", "logits_cols",
)


@dataclass(frozen=True)
class Settings:
    """Every option of a run: the command line over xent.yaml over these defaults."""

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
    labels_key: str | None = None
    id_col: tuple[str, ...] | None = None
    max_bytes: int = DEFAULT_MAX_BYTES
    class_axis: int = 1
    dtype: str | None = None
    delimiter: str | None = None
    header: bool | None = None
    backend: str = "auto"
    device: str = "cpu"
    convention: str = "torch"
    sample_weight: str | None = None
    format: str = "table"
    per_row: bool = False
    rows: int = 20
    precision: int = 4
    output: str | None = None
    fail_above: float | None = None
    quiet: bool = False
    row: int = 0
    top_k: int | None = None
    by_class: bool = False
    save_svg: str | None = None
    save_html: str | None = None
    config: str | None = None
    task: str = "auto"
    pos_weight: str | None = None
    threshold: float = 0.5
    focal_gamma: float | None = None
    focal_alpha: float | None = None
    shift: bool = False
    mask: str | None = None
    per_sequence: bool = False
    z_loss: float = 0.0
    softcap: float | None = None
    temperature: float | None = None
    logits_cols: str | None = None
    scheduler: str | None = None

    sources: dict[str, str] = field(default_factory=dict, compare=False)

    @classmethod
    def resolve(cls, given: dict[str, Any], formats: tuple[str, ...]) -> "Settings":
        """Merge the command line (`given`, None for left out) over the config file,
        remembering where each setting came from; announce a config file in force."""
        from . import config

        path = config.locate(given.pop("config", None), given.pop("no_config", False))
        loaded = config.load(path) if path else None
        from_file = dict(loaded.values) if loaded else {}
        if from_file.get("format") not in formats:
            from_file.pop("format", None)
        chosen = {k: (v.value if isinstance(v, enum.Enum) else v) for k, v in given.items() if v is not None}
        values = {**from_file, **chosen}
        for name in ("classes", "id_col"):
            if isinstance(values.get(name), str):
                values[name] = tuple(c.strip() for c in values[name].split(","))
        if values.get("delimiter") is not None:
            text = values["delimiter"]
            values["delimiter"] = DELIMITER_NAMES.get(text.lower(), text)
            if values["delimiter"] is not None and len(values["delimiter"]) != 1:
                raise XentError(f"--delimiter takes one character (or tab, space), got {text!r}")
        if values.get("pos_weight") is not None:
            values["pos_weight"] = str(values["pos_weight"])
        if values.get("label_col") is not None:
            values["label_col"] = str(values["label_col"])
        sources = {name: "command line" if name in chosen else loaded.where(name) for name in values}
        settings = cls(**values, config=None if path is None else str(path), sources=sources)
        if path is not None and not chosen.get("quiet"):  # only -q hides it: the file cannot hide itself
            applied = [name for name in from_file if name not in chosen]
            _notice(f"using the settings in {path}" + (f" ({', '.join(applied)})" if applied else ""))
        return settings

    def engine_options(self) -> dict[str, Any]:
        """What the JSON reports under "options": every setting that moves the
        number, and under "from" where each one that is not a default came from."""
        options = {name: getattr(self, name) for name in NUMBER_SETTINGS}
        options["classes"] = None if self.classes is None else list(self.classes)
        options["id_col"] = None if self.id_col is None else list(self.id_col)
        options["config"] = self.config
        options["xent_version"] = __version__
        options["from"] = {name: self.sources.get(name, "default") for name in NUMBER_SETTINGS}
        return options

    def loss_spec(self):
        """The settings that shape the number, as the engine takes them."""
        from .engine import LossSpec

        return LossSpec(
            self.input, self.reduction, self.ignore_index, self.label_smoothing, self.convention, self.dtype,
            focal_gamma=self.focal_gamma, focal_alpha=self.focal_alpha, softcap=self.softcap,
            temperature=self.temperature, z_loss=self.z_loss,
        )



def _given(ctx: typer.Context) -> dict[str, Any]:
    """The command's options that are settings (None where left out), as Typer parsed them."""
    names = {f.name for f in fields(Settings)} | {"no_config"}
    return {name: value for name, value in ctx.params.items() if name in names}


@dataclass(frozen=True)
class Computed:
    """A computed batch: the first file's batch (names, classes), the weights
    used, the result, and per-file totals when there were several files."""

    batch: Any
    weight: Any
    sample_weight: Any
    result: Any
    files: list[dict[str, Any]] | None


def _compute(
    settings: Settings, keep_rows: bool, metrics: bool, order: tuple[str, ...] | None = None,
    said: set[str] | None = None,
) -> Computed:
    """Read the batch (or the bundled example) and compute its loss.

    `keep_rows` keeps every row's numbers; without it memory stays bounded
    however many rows there are. LOGITS and LABELS may each name several
    files (a glob, or a comma-separated list): shards.py pairs them and runs
    them one at a time into one result. `order` puts the columns in another
    model's class order (compare), integer labels following their columns;
    notices already in `said` are not said again (compare reads LABELS twice).
    """
    from .engine import shards
    from .readers import ReadOptions, example_batch, read_class_weights, read_sample_weights

    said = set() if said is None else said

    def notice(messages) -> None:
        fresh = tuple(message for message in messages if message not in said)
        said.update(fresh)
        _say(fresh, settings)

    class_weights = read_class_weights(settings.weight) if settings.weight else None
    sample = read_sample_weights(settings.sample_weight) if settings.sample_weight else None

    def engine(batch, weight, sample_weight, part: bool):
        return _run(batch, weight, sample_weight, settings, keep_rows, metrics, part=part)

    if settings.logits is None:
        if settings.labels is not None:
            raise XentError("LABELS given without LOGITS")
        if not settings.quiet:
            _notice(EXAMPLE_NOTICE)
        batch = example_batch()
        weight = None if class_weights is None else class_weights.resolve(None, batch.logits.shape[1], [(batch.target, None)])
        values = None if sample is None else sample[0]
        result = engine(batch, weight, values, False)
        _warn(result.warnings, settings)
        return Computed(batch, weight, values, result, None)
    read = ReadOptions(
        delimiter=settings.delimiter, header=settings.header, ids=settings.id_col or (), max_bytes=settings.max_bytes
    )
    plan = shards.plan(
        settings.logits, settings.labels, read, class_weights=class_weights, sample=sample,
        sample_source=settings.sample_weight, class_axis=settings.class_axis, key=settings.key,
        labels_key=settings.labels_key, label_col=settings.label_col, classes=settings.classes, order=order,
        ignore_index=settings.ignore_index, task=settings.task, shift=settings.shift, mask=settings.mask,
        logits_cols=settings.logits_cols,
    )
    def warn(messages, prefix: str) -> None:
        _warn(tuple(messages), settings, prefix)

    if settings.scheduler is not None and len(plan.pairs) > 1:
        from .render.progress import progress_bar

        with progress_bar(settings.quiet, total=len(plan.pairs)) as advance:  # counts files, not rows
            done, result = shards.runner("dask")(plan, engine, notice, warn, address=settings.scheduler, progress=advance)
    else:
        done, result = shards.runner("here")(plan, engine, notice, warn)
    first = done[0]
    if len(done) == 1:
        return Computed(first.batch, first.weight, first.sample, result, None)
    return Computed(first.batch, first.weight, plan.sample, result, [shard.totals() for shard in done])


def _say(notices: tuple[str, ...], settings: Settings) -> None:
    if not settings.quiet:
        for notice in notices:
            _notice(notice)


def _warn(warnings: tuple[str, ...], settings: Settings, prefix: str = "") -> None:
    if not settings.quiet:
        for warning in warnings:
            _notice(f"warning: {prefix}{warning}")


def _run_sigmoid(batch, weight, sample_weight, settings: Settings, keep_rows: bool, metrics: bool, part: bool):
    """The sigmoid family (binary, multi-label) on one batch; numpy only, for now."""
    from .engine.sigmoid import binary_cross_entropy
    from .readers import read_vector

    if settings.backend == "torch" or settings.device != "cpu":
        raise XentError(f"--task {batch.task} runs on the numpy backend on the CPU (torch and CUDA: not yet)")
    if settings.top_k is not None:
        raise XentError(f"--top-k is a softmax metric: not for --task {batch.task}")
    if settings.by_class and batch.task == "binary":
        raise XentError("--by-class lists the classes of a multi-label batch: one score per row has one")
    pos_weight = None if settings.pos_weight is None else read_vector(settings.pos_weight, "--pos-weight")
    return binary_cross_entropy(
        batch.logits, batch.target, weight=weight, pos_weight=pos_weight, sample_weight=sample_weight,
        threshold=settings.threshold, keep_rows=True, metrics=metrics, by_class=settings.by_class, part=part,
        locate_logits=batch.locate_logits, locate_labels=batch.locate_labels,
        spec=replace(settings.loss_spec(), task=batch.task),
    )


def _run(batch, weight, sample_weight, settings: Settings, keep_rows: bool, metrics: bool, part: bool = False):
    """The engine on one batch (`part` of several files, or the whole), with a progress bar."""
    from .engine import ClassRows, cross_entropy
    from .engine.metrics import MetricOptions
    from .render.progress import progress_bar

    if batch.task != "multiclass":
        return _run_sigmoid(batch, weight, sample_weight, settings, keep_rows, metrics, part)
    with progress_bar(settings.quiet, total=ClassRows(batch.logits, batch.class_axis).positions) as advance:
        result = cross_entropy(
            batch.logits,
            batch.target,
            weight=weight,
            spec=settings.loss_spec(),
            class_axis=batch.class_axis,
            backend=settings.backend,
            device=settings.device,
            sample_weight=sample_weight,
            keep_rows=keep_rows,
            metrics=MetricOptions(settings.top_k, settings.by_class) if metrics else None,
            progress=advance,
            locate_logits=batch.locate_logits,
            locate_labels=batch.locate_labels,
            part=part,
        )
    return result


@app.command()
def compute(
    ctx: typer.Context,
    logits: LogitsArg = None,
    labels: LabelsArg = None,
    input: InputOpt = None,
    weight: WeightOpt = None,
    ignore_index: IgnoreOpt = None,
    label_smoothing: SmoothingOpt = None,
    reduction: ReductionOpt = None,
    classes: ClassesOpt = None,
    label_col: LabelColOpt = None,
    logits_cols: LogitsColsOpt = None,
    key: KeyOpt = None,
    labels_key: LabelsKeyOpt = None,
    id_col: IdColOpt = None,
    max_bytes: MaxBytesOpt = None,
    class_axis: ClassAxisOpt = None,
    dtype: DTypeOpt = None,
    delimiter: DelimiterOpt = None,
    header: HeaderOpt = None,
    backend: BackendOpt = None,
    device: DeviceOpt = None,
    convention: ConventionOpt = None,
    sample_weight: SampleWeightOpt = None,
    task: TaskOpt = None,
    pos_weight: PosWeightOpt = None,
    threshold: ThresholdOpt = None,
    focal_gamma: FocalGammaOpt = None,
    focal_alpha: FocalAlphaOpt = None,
    z_loss: ZLossOpt = None,
    softcap: SoftcapOpt = None,
    temperature: TemperatureOpt = None,
    shift: ShiftOpt = None,
    mask: MaskOpt = None,
    scheduler: SchedulerOpt = None,
    per_sequence: Annotated[Optional[bool], typer.Option("--per-sequence", help="One row per sequence: its tokens, loss and perplexity.")] = None,
    format: Annotated[
        Optional[Format],
        typer.Option("--format", "-f", envvar="XENT_FORMAT", help="Output format. [default: table]", show_default=False),
    ] = None,
    per_row: Annotated[Optional[bool], typer.Option("--per-row", help="Include per-row numbers in json/yaml.")] = None,
    top_k: Annotated[Optional[int], typer.Option("--top-k", min=RANGES["top_k"][0], help="Also report accuracy within the top K classes.")] = None,
    by_class: Annotated[Optional[bool], typer.Option("--by-class", help="Per class: rows, mean loss and accuracy.")] = None,
    save_svg: Annotated[Optional[str], typer.Option("--save-svg", help="Also save the table view as an SVG file.")] = None,
    save_html: Annotated[Optional[str], typer.Option("--save-html", help="Also save the table view as an HTML file.")] = None,
    rows: Annotated[
        Optional[int], typer.Option("--rows", min=RANGES["rows"][0], help="Rows shown in the table (head and tail); 0 = all. [default: 20]", show_default=False)
    ] = None,
    precision: PrecisionOpt = None,
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="Write the output to FILE (atomically).")] = None,
    fail_above: Annotated[
        Optional[float], typer.Option("--fail-above", help="Exit 1 if the reduced loss is above X (or NaN).")
    ] = None,
    config: ConfigOpt = None,
    no_config: NoConfigOpt = False,
    quiet: QuietOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Compute the loss over a batch and show it per row."""
    settings = Settings.resolve(_given(ctx), FORMATS["compute"])
    if settings.fail_above is not None and math.isnan(settings.fail_above):
        raise XentError("--fail-above needs a number, not NaN")
    _check_files(settings)
    per_row_output = settings.format in ("csv", "tsv", "jsonl") or (settings.format in ("json", "yaml") and settings.per_row)
    pictures = settings.save_svg or settings.save_html
    with_metrics = settings.format in ("table", "json", "yaml") or bool(pictures)  # the outputs that show them
    computed = _compute(settings, keep_rows=per_row_output or settings.per_sequence, metrics=with_metrics)
    result, files = computed.result, computed.files
    from .engine.metrics import MetricOptions, option_warnings
    from .render import compute as render

    # Warned here, not refused: the number is still right, only uninformative.
    useless = option_warnings(MetricOptions(settings.top_k, settings.by_class), result.classes)
    if useless:
        result = replace(result, warnings=(*result.warnings, *useless))
        _warn(tuple(useless), settings)

    sequences = None
    if settings.per_sequence:
        from .engine.sequences import per_sequence

        if files:
            raise XentError("--per-sequence takes one LOGITS file (and one LABELS file), not several")
        sequences = per_sequence(result)
    report = render.Report(result, computed.batch, settings.engine_options(), files, sequences)
    drawing = None
    if settings.format == "table" or pictures:
        if files:
            drawing = render.files_table(report, settings.precision)
        elif sequences is not None:
            from .render import sequences as sequence_table

            drawing = sequence_table.table(report, settings.precision, settings.rows)
        elif result.spec.task != "multiclass":
            from .render import binary

            drawing = binary.table(report, settings.precision, settings.rows, 120 if settings.output else _width())
        else:
            drawing = _table(report, computed, settings)
    if settings.format == "table":
        _print(drawing, settings.output)
    else:
        _emit(report, settings)
    if pictures:
        if hasattr(drawing, "__next__"):  # a long table drawn in chunks: draw it again for the pictures
            from rich.console import Group

            drawing = Group(*_table(report, computed, settings))
        _save_pictures(drawing, settings, render.picture_title(report))
    gated = result.mean if result.loss is None else result.loss
    if settings.fail_above is not None and (math.isnan(gated) or gated > settings.fail_above):
        what = "is NaN" if math.isnan(gated) else f"{gated!r} is above --fail-above {settings.fail_above!r}"
        _notice(f"the loss {what}: the gate fails")
        raise typer.Exit(ExitCode.GATE_FAILED)


@app.command()
def explain(
    ctx: typer.Context,
    logits: LogitsArg = None,
    labels: LabelsArg = None,
    row: Annotated[
        Optional[int], typer.Option("--row", "-R", help="The row to explain: 0-based, negative from the end. [default: 0]", show_default=False)
    ] = None,
    input: InputOpt = None,
    weight: WeightOpt = None,
    ignore_index: IgnoreOpt = None,
    label_smoothing: SmoothingOpt = None,
    reduction: ReductionOpt = None,
    classes: ClassesOpt = None,
    label_col: LabelColOpt = None,
    logits_cols: LogitsColsOpt = None,
    key: KeyOpt = None,
    labels_key: LabelsKeyOpt = None,
    id_col: IdColOpt = None,
    max_bytes: MaxBytesOpt = None,
    class_axis: ClassAxisOpt = None,
    dtype: DTypeOpt = None,
    delimiter: DelimiterOpt = None,
    header: HeaderOpt = None,
    backend: BackendOpt = None,
    device: DeviceOpt = None,
    convention: ConventionOpt = None,
    sample_weight: SampleWeightOpt = None,
    task: TaskOpt = None,
    pos_weight: PosWeightOpt = None,
    focal_gamma: FocalGammaOpt = None,
    focal_alpha: FocalAlphaOpt = None,
    z_loss: ZLossOpt = None,
    softcap: SoftcapOpt = None,
    temperature: TemperatureOpt = None,
    shift: ShiftOpt = None,
    mask: MaskOpt = None,
    vocab: Annotated[Optional[str], typer.Option("--vocab", help="A language model's tokens, one per line (line k: token id k), to name the classes.")] = None,
    format: Annotated[
        Optional[ExplainFormat], typer.Option("--format", "-f", help="Output format. [default: table]", show_default=False)
    ] = None,
    precision: PrecisionOpt = None,
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="Write the output to FILE (atomically).")] = None,
    config: ConfigOpt = None,
    no_config: NoConfigOpt = False,
    quiet: QuietOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Explain one row's loss step by step: max, softmax, log p, the loss, its share of the batch."""
    settings = Settings.resolve(_given(ctx), FORMATS["explain"])
    _check_files(settings)
    computed = _compute(settings, keep_rows=True, metrics=False)
    batch, weight, result = computed.batch, computed.weight, computed.result
    if computed.files:
        raise XentError("explain takes one LOGITS file (and one LABELS file), not several")
    if batch.task != "multiclass":
        if vocab is not None:
            raise XentError(f"--vocab names the tokens of a softmax over a vocabulary, not the {batch.task} task's scores")
        _explain_sigmoid(computed, settings)
        return
    from .engine.explain import explain_row, resolve_row
    from .readers import read_vocabulary
    from .render import explain as render_explain

    position = resolve_row(settings.row, result.rows)
    sample_weights = computed.sample_weight
    explanation = explain_row(
        batch.logits,
        batch.target,
        result,
        position,
        class_axis=batch.class_axis,
        weight=weight,
        ignore_index=settings.ignore_index,
        label_smoothing=settings.label_smoothing,
        input=settings.input,
        class_names=batch.class_names,
        where=batch.locate_logits(position),
        convention=settings.convention,
        sample_weight=None if sample_weights is None else float(sample_weights[position]),
        torch_batch_loss=None if settings.convention == "torch" else _torch_batch_loss(batch, weight, settings),
        vocabulary=None if vocab is None else read_vocabulary(vocab, result.classes),
    )
    _write_explanation(render_explain, explanation, settings)


def _explain_sigmoid(computed: Computed, settings: Settings) -> None:
    """explain for the sigmoid family: the stable log-sigmoid, step by step."""
    from .engine.explain import resolve_row
    from .engine.explain_binary import explain_binary_row
    from .readers import read_vector
    from .render import explain_binary as render

    batch, result = computed.batch, computed.result
    position = resolve_row(settings.row, result.rows)
    sample_weights = computed.sample_weight
    explanation = explain_binary_row(
        batch.logits, batch.target, result, position,
        weight=computed.weight,
        pos_weight=None if settings.pos_weight is None else read_vector(settings.pos_weight, "--pos-weight"),
        sample_weight=None if sample_weights is None else float(sample_weights[position]),
        class_names=batch.class_names,
        where=batch.locate_logits(position),
    )
    _write_explanation(render, explanation, settings)


def _write_explanation(renderer, explanation, settings: Settings) -> None:
    """An explanation in the asked format, by its renderer module (WRITERS, else its table)."""
    if settings.format in renderer.WRITERS:
        write_output(renderer.WRITERS[settings.format](explanation, settings.precision), settings.output)
    else:
        _print(renderer.table(explanation, settings.precision), settings.output)


@app.command()
def compare(
    ctx: typer.Context,
    base: Annotated[str, typer.Argument(help="The base model's logits (any input form).", show_default=False)],
    new: Annotated[str, typer.Argument(help="The new model's logits, same rows and classes.", show_default=False)],
    labels: LabelsArg = None,
    input: InputOpt = None,
    base_input: Annotated[
        Optional[InputKind], typer.Option("--base-input", help="What BASE holds. [default: --input]", show_default=False)
    ] = None,
    new_input: Annotated[
        Optional[InputKind], typer.Option("--new-input", help="What NEW holds. [default: --input]", show_default=False)
    ] = None,
    weight: WeightOpt = None,
    ignore_index: IgnoreOpt = None,
    label_smoothing: SmoothingOpt = None,
    reduction: ReductionOpt = None,
    classes: ClassesOpt = None,
    key: KeyOpt = None,
    labels_key: LabelsKeyOpt = None,
    id_col: IdColOpt = None,
    max_bytes: MaxBytesOpt = None,
    class_axis: ClassAxisOpt = None,
    dtype: DTypeOpt = None,
    delimiter: DelimiterOpt = None,
    header: HeaderOpt = None,
    backend: BackendOpt = None,
    device: DeviceOpt = None,
    convention: ConventionOpt = None,
    sample_weight: SampleWeightOpt = None,
    format: Annotated[
        Optional[CompareFormat], typer.Option("--format", "-f", help="Output format. [default: table]", show_default=False)
    ] = None,
    fail_if_worse: Annotated[
        Optional[float],
        typer.Option("--fail-if-worse", help="Exit 1 if the new loss exceeds the base loss by more than MARGIN."),
    ] = None,
    resamples: Annotated[int, typer.Option("--resamples", min=RANGES["resamples"][0], max=RANGES["resamples"][1], help=f"Bootstrap resamples for the interval (at most {RANGES['resamples'][1]}).")] = 1000,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the bootstrap.")] = 0,
    precision: PrecisionOpt = None,
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="Write the output to FILE (atomically).")] = None,
    config: ConfigOpt = None,
    no_config: NoConfigOpt = False,
    quiet: QuietOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Compare two models' outputs on the same labels, as a CI gate if you like.

    Each model may hold its own kind of output (--base-input, --new-input):
    a random forest's probabilities against a network's logits, say."""
    from .engine.compare import aligned, check_reduction
    from .engine.compare import compare as compare_results
    from .render import compute as render

    settings = Settings.resolve({**_given(ctx), "logits": base}, FORMATS["compare"])
    _check_files(settings, new)
    if settings.labels is None:
        raise XentError("compare needs LABELS: xent compare BASE NEW LABELS")
    check_reduction(settings.reduction)
    inputs = tuple(settings.input if kind is None else kind.value for kind in (base_input, new_input))
    said: set[str] = set()
    base_run = _compute(replace(settings, input=inputs[0]), keep_rows=True, metrics=False, said=said)
    # The new model's columns in the base model's class order, and its rows in the base's row order (by id).
    order = None if settings.classes else base_run.batch.class_names
    new_run = _compute(replace(settings, logits=new, input=inputs[1]), keep_rows=True, metrics=False, order=order, said=said)
    if base_run.files or new_run.files:
        raise XentError("compare takes one file per model")
    base_batch = base_run.batch
    new_result = aligned(new_run.result, new_run.batch, base_batch, new)
    comparison = compare_results(base_run.result, new_result, resamples=resamples, seed=seed)
    if settings.format in render.COMPARE_WRITERS:
        write_output(render.COMPARE_WRITERS[settings.format](comparison, base, new, inputs), settings.output)
    else:
        table = render.comparison_table(comparison, base, new, settings.precision, base_batch.class_names, inputs)
        _print(table, settings.output)
    if fail_if_worse is not None and not comparison.difference <= fail_if_worse:
        _notice(f"the new loss is worse by {comparison.difference!r}, more than --fail-if-worse {fail_if_worse!r}")
        raise typer.Exit(ExitCode.GATE_FAILED)


def _torch_batch_loss(batch, weight, settings: Settings) -> float:
    """torch's value for the batch, to set beside another convention's."""
    # torch's mean already divides by the row weights, as Keras's mean_with_sample_weight does
    reduction = "mean" if settings.reduction == "mean-with-sample-weight" else settings.reduction
    torch_settings = replace(settings, convention="torch", reduction=reduction)
    result = _run(batch, weight, None, torch_settings, keep_rows=False, metrics=False)
    return result.sum if result.reduction == "sum" else result.mean


def _emit(report, settings: Settings) -> None:
    """The report in its format; a bar shows while millions of per-row lines are
    written to a file or a pipe (not under them on the terminal)."""
    from .render import compute as render
    from .render.progress import by_lines, progress_bar

    pieces = render.WRITERS[settings.format](report, settings.per_row)
    under_the_rows = settings.output is None and Streams.current().stdout_is_terminal()
    with progress_bar(settings.quiet or under_the_rows, total=report.result.rows, label="writing") as advance:
        write_output(pieces if advance is None else by_lines(pieces, advance, report.result.rows), settings.output)


def _check_files(settings: Settings, *more_logits: str) -> None:
    """Before anything is read: a closed stdin, an output's missing folder, an
    output that is also an input (writing it would destroy the input)."""
    from .readers import STDIN

    inputs = [settings.logits, *more_logits, settings.labels, settings.weight, settings.sample_weight, settings.mask, settings.config]
    if STDIN in inputs and sys.stdin is None:  # started with stdin closed (`<&-`)
        raise XentError("standard input is closed", "<stdin>")
    outputs = [settings.output, settings.save_svg, settings.save_html]
    check_writable(outputs)
    refuse_overwriting_inputs(outputs, inputs)


def _save_pictures(drawing, settings: Settings, title: str) -> None:
    """The table view as SVG and/or HTML files (CI artifacts), written atomically."""
    from .render.compute import export_picture

    for path, kind in ((settings.save_svg, "svg"), (settings.save_html, "html")):
        if path:
            write_output(export_picture(drawing, kind, title), path)


def _print(drawing, output: str | None) -> None:
    """A rich drawing as the terminal shows it (colour only there), or as plain
    text to a file; captured first, so that it is written by the checked writer."""
    from rich.console import Console

    if output is None:
        screen = Console()  # the terminal's width and colours; none in a pipe
        console = Console(
            file=io.StringIO(), width=screen.width, color_system=screen.color_system, force_terminal=screen.is_terminal
        )
    else:
        console = Console(file=io.StringIO(), width=120, color_system=None)
    if not hasattr(drawing, "__next__"):
        console.print(drawing)
        write_output(console.file.getvalue(), output)
        return

    def pieces():  # a long table, a chunk of rows at a time
        for part in drawing:
            console.print(part)
            yield console.file.getvalue()
            console.file.seek(0)
            console.file.truncate()

    write_output(pieces(), output)


TABLE_CHUNK = 2000  # rows drawn at a time when the table shows more (--rows 0 on a large file)


def _table(report, computed: Computed, settings: Settings):
    """The table: the totals, and the shown rows computed again on their own.

    A row's numbers do not depend on the other rows, so the head and tail
    are recomputed by the same engine instead of keeping every row; more
    than TABLE_CHUNK rows are computed and drawn a chunk at a time."""
    from rich.console import Group

    from .render import compute as render

    result = report.result
    positions, hidden = render.shown_positions(result.rows, settings.rows)
    width = 120 if settings.output else _width()
    chunks = (_table_rows(report, computed, settings, positions[k : k + TABLE_CHUNK])
              for k in range(0, len(positions), TABLE_CHUNK))
    if len(positions) <= TABLE_CHUNK:
        return Group(*render.table_parts(report, list(chunks), hidden, settings.precision, width))
    return render.table_parts(report, chunks, hidden, settings.precision, width, steady=True)


def _width() -> int:
    """The terminal's width (80 in a pipe)."""
    from rich.console import Console

    return Console().width


def _table_rows(report, computed: Computed, settings: Settings, positions: list[int]):
    """(positions, their per-row Result, their softmax), under the run's own settings."""
    from .engine import rows_at

    result, batch = report.result, report.batch
    rows, probabilities = rows_at(
        batch.logits, batch.target, positions, result.spec, class_axis=batch.class_axis,
        weight=computed.weight, sample_weight=computed.sample_weight, backend=result.backend, device=result.device,
    )
    return positions, rows, probabilities

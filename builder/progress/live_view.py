"""The live picture of a running build, drawn from a :class:`BuildModel` (no state of its own).

Each stage gets a heading and one row per started step; a running step shows a spinner, its
elapsed time and the last lines of its output. Stages running at once appear one below the
other. When the terminal is too short, finished steps of each stage fold into one line first,
so running steps (what a person watches) stay on screen.
"""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from builder.progress._text import clean_text
from builder.progress.model import BuildModel, StageView, StepState, StepView, TransferView
from builder.progress.units import human_seconds, human_size, short_digest

#: Output lines shown under a running step.
LIVE_TAIL_LINES = 5

_SPINNER_FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
_MARKS = {
    StepState.CACHED: ("✔", "cyan"),
    StepState.REBUILT: ("✔", "green"),
    StepState.BASE: ("✔", "green"),
    StepState.FAILED: ("✘", "bold red"),
    StepState.CANCELLED: ("-", "dim"),
}


def spinner_frame(now: float) -> str:
    """A braille spinner frame chosen by time, ten frames a second (a fake clock makes it fixed)."""
    return _SPINNER_FRAMES[int(now * 10) % len(_SPINNER_FRAMES)]


def step_status(step: StepView, now: float) -> Text:
    """``CACHED``, ``DONE 2.3s 12.1MB``, ``ERROR 0.4s`` or the running step's elapsed time."""
    if step.state is StepState.CACHED:
        return Text("CACHED", style="cyan")
    if step.state in (StepState.REBUILT, StepState.BASE):
        size = f" {human_size(step.layer_size)}" if step.layer_digest else ""
        return Text(f"DONE {human_seconds(step.elapsed(now))}{size}", style="green")
    if step.state is StepState.FAILED:
        return Text(f"ERROR {human_seconds(step.elapsed(now))}", style="bold red")
    if step.state is StepState.CANCELLED:
        return Text("CANCELLED", style="dim")
    return Text(f"RUNNING {human_seconds(step.elapsed(now))}", style="yellow")


def render_live(model: BuildModel, height: int) -> RenderableType:
    """The whole live view, at most about ``height`` lines tall."""
    now = model.now()
    done = sum(1 for step in model.steps.values() if step.finished)
    header = Text.assemble(
        ("Building ", "bold"),
        (human_seconds(model.elapsed()), "bold"),
        f" ({done}/{model.total_steps} steps)",
    )
    stages = list(model.stages.values())
    fold = _needs_folding(stages, height - 1)
    table = Table.grid(padding=(0, 1), expand=True)
    table.add_column(width=1, no_wrap=True)
    table.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
    table.add_column(justify="right", no_wrap=True)
    for stage in stages:
        _add_stage(table, stage, now, fold)
    transfers = [transfer for transfer in model.transfers.values() if not transfer.finished]
    if not transfers:
        return Group(header, table)
    return Group(header, _transfer_table(transfers), table)


def _transfer_table(transfers: list[TransferView]) -> Table:
    """One bar per blob still moving: direction, image, short digest, bytes and speed."""
    table = Table.grid(padding=(0, 1), expand=True)
    table.add_column(no_wrap=True, overflow="ellipsis", ratio=2)
    table.add_column(ratio=1)
    table.add_column(justify="right", no_wrap=True)
    for transfer in transfers:
        speed = transfer.bytes_per_second()
        table.add_row(
            Text(clean_text(f"{transfer.direction} {transfer.ref} {short_digest(transfer.digest)}")),
            ProgressBar(total=max(transfer.total_bytes, 1), completed=transfer.done_bytes),
            Text(
                f"{human_size(transfer.done_bytes)}/{human_size(transfer.total_bytes)}"
                + (f" {human_size(int(speed))}/s" if speed else "")
            ),
        )
    return table


def _needs_folding(stages: list[StageView], height: int) -> bool:
    rows = 0
    for stage in stages:
        rows += 1 + len(stage.steps)
        rows += sum(min(len(step.tail), LIVE_TAIL_LINES) for step in stage.steps if not step.finished)
    return rows > height


def _add_stage(table: Table, stage: StageView, now: float, fold: bool) -> None:
    finished = sum(1 for step in stage.steps if step.finished)
    title = stage.name or "build"
    table.add_row("", Text(f"{title} ({finished}/{stage.count})", style="bold blue"), "")
    shown = stage.steps
    if fold:
        folded = [step for step in stage.steps if step.finished and step.state is not StepState.FAILED]
        if len(folded) > 1:
            cached = sum(1 for step in folded if step.state is StepState.CACHED)
            table.add_row("✔", Text(f"{len(folded)} steps done ({cached} cached)", style="dim"), "")
            folded_numbers = {step.number for step in folded}
            shown = [step for step in stage.steps if step.number not in folded_numbers]
    for step in shown:
        _add_step(table, step, now)


def _add_step(table: Table, step: StepView, now: float) -> None:
    if step.finished:
        mark, style = _MARKS[step.state]
        table.add_row(Text(mark, style=style), Text(f"#{step.number} {step.name}"), step_status(step, now))
        return
    table.add_row(
        Text(spinner_frame(now), style="yellow"),
        Text(f"#{step.number} {step.name}", style="bold"),
        step_status(step, now),
    )
    for line in list(step.tail)[-LIVE_TAIL_LINES:]:
        table.add_row("", Text(f"  │ {line}", style="dim"), "")

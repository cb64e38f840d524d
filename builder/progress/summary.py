"""What stays on the terminal after a build: the step table, the totals and, if it failed, why.

The failure report shows the Dockerfile lines around the failing instruction (the
instruction itself marked and highlighted), the error with its exit status, and the last
lines the step printed — what a person needs to fix it without scrolling back.
"""

from __future__ import annotations

from collections.abc import Mapping

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from builder.progress._text import clean_text
from builder.progress.model import BuildModel, StepState, StepView
from builder.progress.units import human_seconds, human_size, short_digest

#: Dockerfile lines shown before and after a failing instruction.
CONTEXT_LINES = 2

_RESULT_STYLES = {
    StepState.CACHED: ("cached", "cyan"),
    StepState.REBUILT: ("rebuilt", "green"),
    StepState.BASE: ("base", "green"),
    StepState.FAILED: ("FAILED", "bold red"),
    StepState.CANCELLED: ("cancelled", "dim"),
    StepState.RUNNING: ("cancelled", "dim"),
}


def summary_table(model: BuildModel) -> Table:
    """One row per step: number and name, cached or rebuilt, layer size, short digest, time."""
    table = Table(title="Build summary", title_justify="left", expand=False)
    table.add_column("step", no_wrap=True, overflow="ellipsis")
    table.add_column("result", no_wrap=True)
    table.add_column("layer", justify="right", no_wrap=True)
    table.add_column("digest", no_wrap=True)
    table.add_column("time", justify="right", no_wrap=True)
    now = model.now()
    for step in model.ordered_steps():
        result, style = _RESULT_STYLES[step.state]
        table.add_row(
            Text(f"#{step.number} {step.name}"),
            Text(result, style=style),
            human_size(step.layer_size) if step.layer_digest else "-",
            short_digest(step.layer_digest) if step.layer_digest else "-",
            "-"
            if step.state in (StepState.CANCELLED, StepState.RUNNING)
            else human_seconds(step.elapsed(now)),
        )
    return table


def totals_line(model: BuildModel) -> Text:
    """``Built in 12.3s: 4 of 7 steps cached`` and the image id and names (or the failure)."""
    steps = [step for step in model.steps.values() if step.state is not StepState.BASE]
    cached = sum(1 for step in steps if step.state is StepState.CACHED)
    counts = f"{cached} of {len(steps)} steps cached"
    finished = model.finished
    if finished is None:
        return Text(f"Build failed after {human_seconds(model.elapsed())}: {counts}", style="bold red")
    text = Text.assemble(("Built", "bold green"), f" in {human_seconds(finished.seconds)}: {counts}\n")
    text.append(f"image {finished.image_id}")
    if finished.names:
        text.append(" tagged " + clean_text(", ".join(finished.names)))
    return text


def failure_report(step: StepView, sources: Mapping[str, str]) -> Panel:
    """The failing instruction in its Dockerfile, the error, and the end of the step's output."""
    parts: list[RenderableType] = []
    if step.location is not None:
        parts.append(_source_excerpt(step, sources))
    parts.append(Text(step.error or "failed", style="bold red"))
    if step.tail:
        shown = len(step.tail)
        heading = f"last {shown} of {step.log_lines} output lines:" if step.log_lines > shown else "output:"
        parts.append(Text(heading, style="bold"))
        parts.append(Text("\n".join(step.tail)))
    where = f" ({step.location.describe()})" if step.location else ""
    title = Text(f"ERROR #{step.number} {step.name}{where}", style="bold red")
    return Panel(Group(*parts), title=title, title_align="left", border_style="red")


def _source_excerpt(step: StepView, sources: Mapping[str, str]) -> Text:
    """Numbered Dockerfile lines; the instruction's own lines marked with ``>`` and in red.

    Without the whole file (``sources`` lacks it) only the instruction's lines are shown,
    from the text its span carries.
    """
    location = step.location
    assert location is not None
    full_text = sources.get(location.file)
    if full_text is not None:
        all_lines = full_text.splitlines()
        first = max(1, location.start_line - CONTEXT_LINES)
        last = min(len(all_lines), location.end_line + CONTEXT_LINES)
        numbered = [(number, all_lines[number - 1]) for number in range(first, last + 1)]
    else:
        numbered = list(enumerate(location.text.splitlines(), start=location.start_line))
    width = len(str(numbered[-1][0])) if numbered else 1
    excerpt = Text()
    for number, line in numbered:
        inside = location.start_line <= number <= location.end_line
        marker = ">" if inside else " "
        excerpt.append(
            f"{marker} {number:>{width}} │ {clean_text(line)}\n", style="bold red" if inside else "dim"
        )
    excerpt.rstrip()
    return excerpt

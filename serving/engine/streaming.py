"""Streaming a batch as it is generated: every pane's text so far, reported as it
grows, and the stop check at every step.

transformers' TextIteratorStreamer takes a batch of one, so `PaneStreamer`
takes a row per pane. transformers' base classes are mixed in on first use
(`pane_streamer`, `stop_when_asked`): importing this module does not import
transformers. An exception from the caller's callbacks leaves as a
CallerError, which is nobody's pane failure.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

from .panes import CallerError, PaneResult


class Progress:
    """Every pane's text so far, reported to `callback` whenever one grew."""

    def __init__(self, count: int, callback: Callable[[list[str]], None] | None):
        self.texts = [""] * count
        self.callback = callback
        self.changed = False

    def update(self, pane: int, text: str) -> None:
        # A trailing U+FFFD is a UTF-8 character cut between tokens: hold it
        # back until its last byte arrives, so the text only ever grows.
        text = text.rstrip("\ufffd")
        if len(text) > len(self.texts[pane]) and text.startswith(self.texts[pane]):
            self.texts[pane] = text
            self.changed = True

    def report(self) -> None:
        if self.changed and self.callback is not None:
            try:
                self.callback(list(self.texts))
            except Exception as exc:
                raise CallerError(exc) from exc
        self.changed = False

    def finish(self, texts: list[str]) -> None:
        """The final texts, which may add a held-back character (or, after a failed
        batch retried pane by pane, replace what was streamed)."""
        if texts != self.texts:
            self.texts = list(texts)
            self.changed = True
        self.report()


class PaneRow:
    """One row of a batch: the tokens generated for one pane."""

    def __init__(self, pane: int):
        self.pane = pane
        self.tokens: list[int] = []  # every generated token, the stop token included
        self.text_tokens: list[int] = []  # the tokens of the reply
        self.stopped = False  # hit eos or end of turn
        self.first: float | None = None
        self.last: float | None = None

    def result(self, tokenizer, *, prompt_tokens, max_new_tokens, started) -> PaneResult:
        count = len(self.tokens)
        speed = None
        if count > 1 and self.last > self.first:
            speed = round((count - 1) / (self.last - self.first), 2)
        return PaneResult(
            text=tokenizer.decode(self.text_tokens, skip_special_tokens=True),
            prompt_tokens=prompt_tokens,
            completion_tokens=count,
            finish_reason="length" if not self.stopped and count >= max_new_tokens else "stop",
            first_token_seconds=None if self.first is None else self.first - started,
            seconds=(self.last or time.perf_counter()) - started,
            tokens_per_second=speed,
        )


class PaneStreamer:
    """A streamer for a batch: one token per row per step, row i to pane i.

    (transformers' TextIteratorStreamer takes a batch of one only.) Used
    through `pane_streamer`, which makes it a transformers BaseStreamer.
    """

    def __init__(self, tokenizer, panes: list[int], stop_ids: set[int], progress, started):
        self.tokenizer = tokenizer
        self.rows = [PaneRow(pane) for pane in panes]
        self.stop_ids = stop_ids
        self.progress = progress
        self.started = started
        self.prompt_seen = False

    def put(self, value) -> None:
        if not self.prompt_seen:
            # generate() hands the streamer the prompt first.
            self.prompt_seen = True
            return
        now = time.perf_counter()
        for row, token in zip(self.rows, value.tolist(), strict=True):
            if row.stopped:
                continue  # finished rows get padding from here on
            row.tokens.append(token)
            row.first = row.first or now
            row.last = now
            if token in self.stop_ids:
                row.stopped = True
                continue
            row.text_tokens.append(token)
            text = self.tokenizer.decode(row.text_tokens, skip_special_tokens=True)
            self.progress.update(row.pane, text)
        self.progress.report()

    def end(self) -> None:
        pass


class StopWhenAsked:
    """Ends every row once should_stop() says so (through `stop_when_asked`)."""

    def __init__(self, should_stop: Callable[[], bool]):
        self.should_stop = should_stop

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        try:
            stop = bool(self.should_stop())
        except Exception as exc:
            raise CallerError(exc) from exc
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)


# transformers' base classes, mixed in on first use so that importing this
# module does not import transformers.
@functools.cache
def _transformers_classes():
    from transformers import StoppingCriteria
    from transformers.generation.streamers import BaseStreamer

    streamer = type("PaneStreamer", (PaneStreamer, BaseStreamer), {})
    criteria = type("StopWhenAsked", (StopWhenAsked, StoppingCriteria), {})
    return streamer, criteria


def pane_streamer(*args) -> PaneStreamer:
    return _transformers_classes()[0](*args)


def stop_when_asked(should_stop: Callable[[], bool]) -> StopWhenAsked:
    return _transformers_classes()[1](should_stop)

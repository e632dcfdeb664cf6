"""Cross-request batching: the waveforms of many requests scored together on one thread.

Requests put their model inputs into a bounded queue and await the result;
one worker thread takes the oldest input, waits up to `max_wait_ms` for more
(or none, when inputs are already waiting), and scores up to `max_batch` of
them in one forward pass. The event loop never runs the model, so it keeps
accepting and decoding requests while a batch runs, and the inputs that
arrive meanwhile form the next batch: throughput grows with concurrency.

A batch that raises is scored again one input at a time, so only the request
whose input fails gets an error; non-finite logits are an error for their
request alone.
"""
from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import deque

NONFINITE = "the model gave NaN or infinite logits for this audio"


class QueueFull(Exception):
    """No room for another request; `retry_after` is a hint in whole seconds."""

    def __init__(self, waiting, retry_after):
        super().__init__(f"the service is busy ({waiting} requests waiting); retry in {retry_after} s")
        self.retry_after = retry_after


class ScoringFailed(Exception):
    """The model could not score one of a request's inputs; the message says why."""


class _Job:
    """One request: its inputs, their results as they come, and the future to resolve."""

    def __init__(self, pieces, loop, future):
        self.pieces = pieces
        self.results = [None] * len(pieces)
        self.left = len(pieces)
        self.loop = loop
        self.future = future
        self.error = None

    def finish(self, index, result):
        """Record one input's result; True when this was the last one."""
        if isinstance(result, Exception):
            self.error = self.error or result
        else:
            self.results[index] = result
        self.left -= 1
        return self.left == 0

    def resolve(self):
        def settle():
            if self.future.done():  # the client went away
                return
            if self.error is not None:
                self.future.set_exception(self.error)
            else:
                self.future.set_result(self.results)

        self.loop.call_soon_threadsafe(settle)


class BatchQueue:
    """Batches the inputs of concurrent requests for `score(list of waveforms) ->
    list of (logit_fake, logit_real)` (ModelAdapter.score_waveforms).

    `max_queue` bounds the requests waiting for the model (beyond it `submit`
    raises QueueFull); `max_batch` is the most inputs in one forward pass and
    `max_wait_ms` how long the first input of a batch waits for company."""

    def __init__(self, score, max_batch=8, max_wait_ms=10.0, max_queue=64):
        if max_batch < 1 or max_queue < 1 or max_wait_ms < 0:
            raise ValueError("max_batch and max_queue must be >= 1, max_wait_ms >= 0")
        self.score = score
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self.max_queue = max_queue
        self._inputs = deque()  # (job, index, time queued)
        self._waiting_jobs = 0  # jobs with an input still queued
        self._cond = threading.Condition()
        self._stop = False
        self._thread = None
        self.batches = 0
        self.inputs_scored = 0
        self._batch_seconds = 0.0  # moving average, for Retry-After

    # -- life cycle -------------------------------------------------------
    def start(self):
        self._stop = False
        self._thread = threading.Thread(target=self._work, name="adf-serve-model", daemon=True)
        self._thread.start()

    def stop(self):
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()

    # -- the event loop's side --------------------------------------------
    @property
    def waiting(self):
        """Requests waiting for the model (not yet all in a batch)."""
        return self._waiting_jobs

    def retry_after(self):
        """Seconds until the queue has likely drained: at least 1."""
        with self._cond:
            batches = math.ceil(len(self._inputs) / self.max_batch) + 1
        return max(1, math.ceil(batches * self._batch_seconds))

    async def submit(self, pieces):
        """The (logit_fake, logit_real) of each of one request's inputs, in order.
        Raises QueueFull at once when `max_queue` requests are waiting, and
        ScoringFailed when the model failed on one of the inputs."""
        if not pieces:
            return []
        loop = asyncio.get_running_loop()
        job = _Job(pieces, loop, loop.create_future())
        with self._cond:
            if self._waiting_jobs >= self.max_queue:
                raise QueueFull(self._waiting_jobs, self.retry_after())  # the lock is re-entrant
            now = time.monotonic()
            self._inputs.extend((job, i, now) for i in range(len(pieces)))
            self._waiting_jobs += 1
            self._cond.notify_all()
        return await job.future

    # -- the worker thread ------------------------------------------------
    def _take(self):
        """The next batch of (job, index), or None when stopping and drained."""
        with self._cond:
            while not self._inputs:
                if self._stop:
                    return None
                self._cond.wait()
            deadline = self._inputs[0][2] + self.max_wait
            while len(self._inputs) < self.max_batch and not self._stop:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            batch = []
            while self._inputs and len(batch) < self.max_batch:
                job, index, _ = self._inputs.popleft()
                batch.append((job, index))
                if index == len(job.pieces) - 1:  # its last input left the queue
                    self._waiting_jobs -= 1
            return batch

    def _score(self, batch):
        """Results of a batch: scored together, else each alone (only what fails fails)."""
        waveforms = [job.pieces[i] for job, i in batch]
        try:
            return self.score(waveforms)
        except Exception:  # noqa: BLE001 - find the input that fails; the others go on
            if len(batch) == 1:
                raise
        results = []
        for wav in waveforms:
            try:
                results.append(self.score([wav])[0])
            except Exception as err:  # noqa: BLE001 - reported to its request alone
                results.append(ScoringFailed(f"the model failed on this audio ({type(err).__name__}: {err})"))
        return results

    def _work(self):
        while True:
            batch = self._take()
            if batch is None:
                return
            start = time.monotonic()
            try:
                results = self._score(batch)
            except Exception as err:  # noqa: BLE001 - a batch of one failed
                results = [ScoringFailed(f"the model failed on this audio ({type(err).__name__}: {err})")]
            self._batch_seconds = 0.8 * self._batch_seconds + 0.2 * (time.monotonic() - start)
            self.batches += 1
            self.inputs_scored += len(batch)
            for (job, index), result in zip(batch, results):
                if not isinstance(result, Exception) and not all(map(math.isfinite, result)):
                    result = ScoringFailed(NONFINITE)
                if job.finish(index, result):
                    job.resolve()

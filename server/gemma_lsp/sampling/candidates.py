"""The candidate set of one sampling step: the tokens still in play and their logits.

This is llama.cpp's ``llama_token_data_array`` with two differences that keep a step cheap at a
262,144-token vocabulary:

* A step starts *dense*: token ids are implicit (0..n-1) and the logits are the model's array,
  which is read but never written. Samplers that edit logits (penalties, logit bias) copy them
  once into a :class:`Workspace` array that is reused for every later token.
* A dense set can be narrowed lazily. A :class:`Cut` keeps the tokens on one side of a bound on a
  per-token key, and a temperature is kept as a pending divisor; explicit id/logit arrays are
  built ("materialised") only when a sampler needs them, usually after the set has become small.

Once materialised the set is *sparse*: ``ids`` and ``logits`` arrays of the surviving tokens.
Ties are always broken by token id (lower id first), so every result depends on the set of
(token, logit) pairs only, never on the order they were given in.
"""

from __future__ import annotations

import math
import threading

import numpy as np

from .errors import InvalidLogits
from .vector import nonzero_positions

# How the arrays of a sparse set are ordered (dense sets are always in id order).
ORDER_BY_ID = "id"  # ascending token id
ORDER_BY_LOGIT = "logit"  # descending logit, ties by ascending id
ORDER_ANY = "any"

BLOCK = 256  # block size of the two-level cumulative sums used to draw from large sets


class Workspace:
    """Vocabulary-sized scratch arrays, allocated on first use and reused for every token.

    Nothing in it outlives one sampling step, so the chains of one thread can share one
    workspace per vocabulary size (:meth:`shared`): a new request's chain then starts with warm
    arrays instead of paying for ~6 MB of fresh pages on its first token.
    """

    _per_thread = threading.local()

    def __init__(self, n_vocab: int) -> None:
        self.n_vocab = n_vocab
        self._arrays: dict[str, np.ndarray] = {}
        self._handouts: dict[str, int] = {}
        self._token_ids: np.ndarray | None = None

    @classmethod
    def shared(cls, n_vocab: int) -> "Workspace":
        """This thread's workspace for ``n_vocab`` tokens."""
        pool = getattr(cls._per_thread, "pool", None)
        if pool is None:
            pool = cls._per_thread.pool = {}
        workspace = pool.get(n_vocab)
        if workspace is None:
            workspace = pool[n_vocab] = cls(n_vocab)
        return workspace

    def array(self, name: str, dtype: type = np.float32) -> np.ndarray:
        self._handouts[name] = self._handouts.get(name, 0) + 1
        arr = self._arrays.get(name)
        if arr is None or arr.dtype != dtype:
            arr = self._arrays[name] = np.empty(self.n_vocab, dtype=dtype)
        return arr

    def current(self, name: str) -> np.ndarray:
        """The array :meth:`array` last handed out as ``name`` (not counted as a handout)."""
        return self._arrays[name]

    def handouts(self, name: str) -> int:
        """How many times :meth:`array` handed out ``name``: while this does not change, nobody
        can have written to it (see :meth:`Cut.remember_mask`)."""
        return self._handouts.get(name, 0)

    @property
    def token_ids(self) -> np.ndarray:
        """``arange(n_vocab)``; callers must not write to it."""
        if self._token_ids is None:
            self._token_ids = np.arange(self.n_vocab, dtype=np.int64)
            self._token_ids.flags.writeable = False
        return self._token_ids


class Cut:
    """Lazy membership of a dense set: the tokens whose key lies on the kept side of ``bound``.

    ``keep_high`` keeps ``key >= bound`` (a top-by-logit prefix when the key is the logit);
    otherwise ``key <= bound`` is kept. Tokens whose key equals ``bound`` exactly are kept except
    those listed in ``excluded`` (ties at the cut go to the lower token ids).
    """

    __slots__ = ("key", "bound", "keep_high", "excluded", "count", "_known_mask")

    def __init__(self, key: np.ndarray, bound: float, keep_high: bool, excluded: np.ndarray, count: int) -> None:
        self.key = key
        self.bound = bound
        self.keep_high = keep_high
        self.excluded = excluded
        self.count = count
        self._known_mask: tuple[Workspace, str, int, np.ndarray] | None = None

    def remember_mask(self, workspace: Workspace, name: str) -> "Cut":
        """Record that workspace array ``name`` holds this cut's membership mask right now (the
        stage that made the cut computed it anyway): :meth:`known_mask` returns it until the
        array is handed out again. Saves materialising a large cut a compare (~0.03 ms)."""
        self._known_mask = (workspace, name, workspace.handouts(name), workspace.current(name))
        return self

    def known_mask(self) -> np.ndarray | None:
        """The mask recorded by :meth:`remember_mask`, if nobody can have written over it since."""
        if self._known_mask is None:
            return None
        workspace, name, stamp, mask = self._known_mask
        return mask if workspace.handouts(name) == stamp else None

    def contains(self, position: int) -> bool:
        k = self.key[position]
        if k == self.bound:
            return position not in self.excluded
        return bool(k > self.bound) if self.keep_high else bool(k < self.bound)

    def contains_many(self, positions: np.ndarray) -> np.ndarray:
        k = self.key[positions]
        inside = k > self.bound if self.keep_high else k < self.bound
        ties = k == self.bound
        if ties.any():
            inside |= ties & ~np.isin(positions, self.excluded)
        return inside

    def mask(self, out: np.ndarray) -> np.ndarray:
        if self.keep_high:
            np.greater_equal(self.key, self.bound, out=out)
        else:
            np.less_equal(self.key, self.bound, out=out)
        if self.excluded.size:
            out[self.excluded] = False
        return out


class DenseWeights:
    """``exp(logit - shift)`` for every token of a dense set, with lazily computed block sums.

    ``shift`` is 0 when the logits are in a range where that cannot overflow (saving a pass), else
    the maximum logit. The total is accumulated from per-block float32 sums in float64.
    """

    __slots__ = ("values", "shift", "_block_cumsum")

    def __init__(self, values: np.ndarray, shift: float, cum_blocks: np.ndarray | None = None) -> None:
        self.values = values
        self.shift = shift
        self._block_cumsum = cum_blocks

    def block_cumsum(self) -> np.ndarray:
        if self._block_cumsum is None:
            self._block_cumsum = block_cumsum(self.values)
        return self._block_cumsum

    def total(self) -> float:
        return float(self.block_cumsum()[-1])


def block_cumsum(values: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Cumulative sums (float64) of consecutive blocks of ``BLOCK`` values (the last may be short);
    with a bool ``mask``, of the values where it is True.

    einsum's row sums are 2.5x faster than ``.sum(axis=1)`` here, as accurate. With a mask,
    einsum multiplies by the bool operand itself: 0.08 ms at 262,144 tokens, where writing
    ``values * mask`` first (a bool to float32 cast) and summing that took 0.12 ms.
    """
    n = values.shape[0]
    full = n // BLOCK
    sums = np.empty(full + (1 if n % BLOCK else 0), dtype=np.float64)
    if full:
        head = values[: full * BLOCK].reshape(full, BLOCK)
        if mask is None:
            sums[:full] = np.einsum("ij->i", head)
        else:
            sums[:full] = np.einsum("ij,ij->i", head, mask[: full * BLOCK].reshape(full, BLOCK))
    if n % BLOCK:
        tail = values[full * BLOCK :]
        if mask is not None:
            tail = tail[mask[full * BLOCK :]]
        sums[full] = tail.sum(dtype=np.float64)
    return np.cumsum(sums, out=sums)


def _exp_and_block_sums(
    logits: np.ndarray, divisor: np.float32 | None, scaled: np.ndarray, shift: float, out: np.ndarray
) -> np.ndarray:
    """``out = exp(logits / divisor - shift)`` (``scaled`` receives ``logits / divisor``); returns
    the cumulative block sums of ``out`` (float64). (Processing cache-sized chunks was measured
    slower: numpy's exp loop runs best over the whole array.)"""
    with np.errstate(over="ignore", invalid="ignore"):
        x = np.divide(logits, divisor, out=scaled) if divisor is not None else logits
        if shift:
            np.subtract(x, np.float32(shift), out=out)
            np.exp(out, out=out)
        else:
            np.exp(x, out=out)
        return block_cumsum(out)


def weight_shift(max_logit: float) -> float:
    """The shift for ``exp(logit - shift)``: 0 (no subtraction pass) when safe, else the max."""
    # exp(60) * 262144 is far below float32's max; below -20 tokens that underflow would matter.
    return 0.0 if -20.0 <= max_logit <= 60.0 else max_logit


def locate_invalid(logits: np.ndarray, ids: np.ndarray | None) -> InvalidLogits:
    """The error for the first NaN or +inf in ``logits`` (named by token id), or for all -inf."""
    bad = np.flatnonzero(np.isnan(logits) | (logits == np.inf))
    if bad.size:
        position = int(bad[0])
        token = position if ids is None else int(ids[position])
        value = "NaN" if math.isnan(float(logits[position])) else "+inf"
        return InvalidLogits(
            f"logit of token {token} is {value}; only finite logits or -inf (a banned token) can be sampled",
            token=token,
        )
    return InvalidLogits("every token is banned (all logits are -inf); there is nothing to sample")


class Candidates:
    """The tokens still in play for one step; samplers narrow it and a selector picks one."""

    __slots__ = (
        "n_vocab",
        "workspace",
        "ids",
        "logits",
        "order",
        "divisor",
        "cut",
        "selected",
        "_max",
        "_weights",
        "_owned",
    )

    def __init__(self, logits: np.ndarray, workspace: Workspace | None = None) -> None:
        logits = np.asarray(logits)
        if logits.ndim != 1 or logits.shape[0] == 0:
            raise ValueError(f"logits must be a non-empty 1-D array, got shape {logits.shape}")
        if logits.dtype != np.float32:
            logits = logits.astype(np.float32)
        self.n_vocab = int(logits.shape[0])
        if workspace is None or workspace.n_vocab != self.n_vocab:
            workspace = Workspace(self.n_vocab)
        self.workspace = workspace
        self.ids: np.ndarray | None = None  # None: dense (every token, ids implicit)
        self.logits = logits
        self.order = ORDER_BY_ID
        self.divisor = 1.0  # pending temperature of a dense set
        self.cut: Cut | None = None
        self.selected: int | None = None
        self._max: float | None = None
        self._weights: DenseWeights | None = None
        self._owned = False  # whether ``logits`` may be written

    @classmethod
    def from_arrays(
        cls, ids: np.ndarray, logits: np.ndarray, n_vocab: int | None = None, workspace: Workspace | None = None
    ) -> "Candidates":
        """A sparse set of distinct token ids with their logits, in any order."""
        ids = np.asarray(ids, dtype=np.int64)
        logits = np.asarray(logits, dtype=np.float32)
        if ids.ndim != 1 or ids.shape != logits.shape or ids.size == 0:
            raise ValueError("ids and logits must be non-empty 1-D arrays of the same length")
        n_vocab = int(n_vocab if n_vocab is not None else ids.max() + 1)
        if workspace is None or workspace.n_vocab < n_vocab:
            workspace = Workspace(max(n_vocab, ids.size))
        c = cls.__new__(cls)
        c.n_vocab = n_vocab
        c.workspace = workspace
        c.ids = ids
        c.logits = logits
        c.order = ORDER_ANY
        c.divisor = 1.0
        c.cut = None
        c.selected = None
        c._max = None
        c._weights = None
        c._owned = False
        return c

    # ----------------------------------------------------------------------------- queries

    @property
    def is_dense(self) -> bool:
        return self.ids is None

    @property
    def size(self) -> int:
        if self.ids is not None:
            return int(self.ids.shape[0])
        return self.cut.count if self.cut is not None else self.n_vocab

    def max_logit(self) -> float:
        """The largest (effective) logit of the set; validates the logits the first time.

        Raises :class:`InvalidLogits` naming the token if a logit is NaN or +inf, or if every
        token is banned. A dense set with a cut is materialised first (the cut may have removed
        the maximum).
        """
        if self.cut is not None:
            self.materialize()
        m = self._array_max()
        if self.divisor != 1.0:
            return float(np.float32(m) / np.float32(self.divisor))
        return m

    def token_ids(self) -> np.ndarray:
        self.materialize()
        assert self.ids is not None
        return self.ids

    def weights(self) -> DenseWeights:
        """``exp(logit - shift)`` for every token of a dense set, any pending temperature applied.

        Tokens outside a cut are included; the result is cached until the logits change. If the
        maximum is not known yet, ``exp(logit)`` is tried without a shift (saving a pass); a
        total outside [1e-20, 1e37] (a NaN, +inf, an overflow, logits so low that float32 loses
        precision) falls back to validating and shifting by the maximum, so this also validates.
        """
        assert self.ids is None, "weights() is for dense sets"
        if self._weights is not None:
            if self.divisor == 1.0:
                return self._weights
            self._weights = None
        divisor = np.float32(self.divisor)
        scaled = self._spare_buffer("logits") if self.divisor != 1.0 else self.logits
        known_max = self._max is not None
        shift = weight_shift(float(np.float32(self._max) / divisor)) if known_max else 0.0
        out = self._spare_buffer("weights")
        cum = _exp_and_block_sums(self.logits, divisor if self.divisor != 1.0 else None, scaled, shift, out)
        if not known_max and not (1e-20 < cum[-1] < 1e37):  # else precision or range is at risk
            m = float(np.float32(self._array_max()) / divisor)  # raises on NaN / +inf / all banned
            shift = weight_shift(m)
            cum = _exp_and_block_sums(scaled, None, scaled, shift, out)
        if self.divisor != 1.0:
            if self._max is not None:
                self._max = float(np.float32(self._max) / divisor)
            self.logits = scaled
            self._owned = True
            self.divisor = 1.0
        self._weights = DenseWeights(out, shift, cum)
        return self._weights

    def probabilities(self) -> tuple[np.ndarray, np.ndarray]:
        """Token ids and their softmax probabilities (float64) over the current set."""
        self.materialize()
        assert self.ids is not None
        shifted = self.logits.astype(np.float64) - self.max_logit()
        weights = np.exp(shifted)
        return self.ids, weights / weights.sum()

    def cached_weights(self) -> DenseWeights | None:
        """Weights already computed for this dense set (before any pending temperature), if any."""
        return self._weights

    def array_max(self) -> float:
        """Maximum of the stored logits array, ignoring any cut and pending temperature."""
        return self._array_max()

    # ----------------------------------------------------------------------------- edits

    def writable_logits(self) -> np.ndarray:
        """The logits array, copied first if it is not ours to write (e.g. the model's buffer).

        The caller is about to change logits, so cached maxima and weights are dropped.
        """
        if self.ids is None:
            assert self.cut is None, "edit a dense set before cutting it"
            self.apply_divisor()
            if not self._owned:
                out = self._spare_buffer("logits")
                np.copyto(out, self.logits)
                self.logits = out
                self._owned = True
        elif not self._owned:
            self.logits = self.logits.copy()
            self._owned = True
        self._max = None
        self._weights = None
        return self.logits

    def edit_logits(self, positions: np.ndarray, values: np.ndarray) -> None:
        """Set the logits at ``positions`` (copying the array first if it is not ours), keeping
        the cached maximum when the edit cannot have lowered it (saves a pass)."""
        known = self._max if self.divisor == 1.0 else None
        old = self.logits[positions]
        logits = self.writable_logits()
        logits[positions] = values
        if known is not None and not np.any(old == np.float32(known)):
            self._max = max(known, float(values.max())) if values.size else known

    def apply_divisor(self) -> None:
        """Divide a dense set's logits by its pending temperature (in float32, as llama.cpp does)."""
        if self.divisor == 1.0 or self.ids is not None:
            return
        divisor = np.float32(self.divisor)
        m = self._array_max()
        out = self._spare_buffer("logits")
        np.divide(self.logits, divisor, out=out)
        self.logits = out
        self._owned = True
        self._max = float(np.float32(m) / divisor)  # rounding is monotonic: still the maximum
        self.divisor = 1.0
        self._weights = None

    def scale(self, temperature: float) -> None:
        """Divide every logit by ``temperature`` (> 0); lazily for a dense set."""
        if temperature == 1.0:
            return
        if self.ids is None:
            self.apply_divisor()
            self.divisor = float(temperature)
            return
        self.logits = np.divide(self.logits, np.float32(temperature))
        self._owned = True
        if self._max is not None:
            self._max = float(np.float32(self._max) / np.float32(temperature))

    def materialize(self) -> None:
        """Turn a dense set into explicit id and logit arrays (in ascending id order)."""
        if self.ids is not None:
            return
        if self.cut is None:
            ids = self.workspace.token_ids
            logits = self.logits
            owned = False
        else:
            mask = self.cut.known_mask()
            if mask is None:
                mask = self.cut.mask(self.workspace.array("mask", np.bool_))
            ids = nonzero_positions(mask, self.cut.count)
            logits = self.logits[ids]
            owned = True
            self._max = None  # the cut may have removed the maximum
        if self.divisor != 1.0:
            divisor = np.float32(self.divisor)
            logits = np.divide(logits, divisor)
            owned = True
            if self._max is not None:
                self._max = float(np.float32(self._max) / divisor)
            self.divisor = 1.0
        self.ids = ids
        self.logits = logits
        self.order = ORDER_BY_ID
        self.cut = None
        self._weights = None
        self._owned = owned

    def keep(self, positions: np.ndarray, order: str | None = None) -> None:
        """Keep only the tokens at ``positions`` (indices into the arrays of a sparse set).

        ``order`` says how the result is ordered; by default it is inferred (a subsequence taken
        in ascending positions keeps the current order).
        """
        assert self.ids is not None, "keep() is for sparse sets"
        if order is None:
            order = self.order if _is_ascending(positions) else ORDER_ANY
        self.ids = self.ids[positions]
        self.logits = self.logits[positions]
        self.order = order
        self._owned = True
        self._max = None

    def keep_sparse(self, ids: np.ndarray, logits: np.ndarray, order: str) -> None:
        """Replace the set by the given explicit tokens (taken from this set, so already valid)."""
        self.ids = ids
        self.logits = logits
        self.order = order
        self.cut = None
        self.divisor = 1.0
        self._weights = None
        self._owned = True
        self._max = None

    def set_cut(self, cut: Cut) -> None:
        """Narrow a dense set to the members of ``cut`` without materialising it."""
        assert self.ids is None and self.cut is None, "a dense set takes one cut"
        self.cut = cut

    def select(self, token: int) -> None:
        self.selected = int(token)

    # ----------------------------------------------------------------------------- helpers

    def _array_max(self) -> float:
        """Maximum of the current logits array (the whole vocabulary when dense), validated."""
        if self._max is None:
            m = self.logits.max()
            if not (m < np.inf) or m == -np.inf:  # NaN propagates through max; +inf; all banned
                raise locate_invalid(self.logits, self.ids)
            self._max = float(m)
        return self._max

    def _spare_buffer(self, role: str) -> np.ndarray:
        """A workspace array not currently holding this set's logits, weights or cut key."""
        busy = [self.logits]
        if self._weights is not None:
            busy.append(self._weights.values)
        if self.cut is not None:
            busy.append(self.cut.key)
        for name in (f"{role}.a", f"{role}.b", f"{role}.c"):
            arr = self.workspace.array(name)
            if not any(arr is b for b in busy):
                return arr
        raise AssertionError("no spare workspace buffer")  # pragma: no cover


def _is_ascending(positions: np.ndarray) -> bool:
    return positions.size < 2 or bool(np.all(positions[1:] > positions[:-1]))

"""A keras-tuner Oracle that tunes one hyperparameter at a time (coordinate-wise greedy).

The Oracle only proposes values: it never imports Keras and never trains.
"""

from __future__ import annotations

import functools
import json
import math
from typing import Any

from keras_autoopt._backend import kt
from keras_autoopt._checks import check_positive_int
from keras_autoopt.search._greedy_candidates import _candidate_values

_hps = kt.engine.hyperparameters
_Status = kt.engine.trial.TrialStatus


def _synchronized(method: Any) -> Any:
    """``keras_tuner.synchronized``, keeping the method's name and docstring."""
    return functools.wraps(method)(kt.synchronized(method))


def _coordinate_key(hp: Any) -> str:
    """Return the key that identifies ``hp`` in the coordinate order.

    keras-tuner identifies a hyperparameter by its name *and* its conditions
    (two hyperparameters may share a name under different conditions).

    Args:
        hp: A keras-tuner ``HyperParameter``.

    Returns:
        The name for an unconditional hyperparameter, else a JSON list of the
        name and the serialized conditions.
    """
    conditions = hp.get_config()["conditions"]
    if not conditions:
        return hp.name
    return json.dumps([hp.name, conditions], sort_keys=True)


class GreedyOracle(kt.Oracle):
    """Coordinate-wise greedy search: tune one hyperparameter at a time.

    The first trial uses every hyperparameter's default. Then the Oracle walks
    the hyperparameters (the *coordinates*) in the order they entered the
    search space. For the current coordinate it proposes each of its
    candidate values with every other hyperparameter held at the *incumbent*
    (the values of the best completed trial so far, or the defaults while no
    trial has completed); when the coordinate's candidates are used up it
    moves on to the next one. After the last coordinate a new round starts
    from the first. The search stops (status ``"STOPPED"``) after a whole
    round in which the incumbent did not change, or after ``max_trials``.

    Candidate values of a hyperparameter:

    - ``Choice``: all its values; ``Boolean``: ``False`` and ``True``;
      ``Fixed``: none (never varied).
    - ``Int`` / ``Float`` with a ``step``: the whole grid when it has at most
      ``max_values_per_hp`` points, else ``max_values_per_hp`` grid points at
      evenly spaced indices (first and last included). A log grid has evenly
      spaced indices, so its candidates are log-spaced.
    - ``Int`` / ``Float`` without a step: ``max_values_per_hp`` points evenly
      spaced from ``min_value`` to ``max_value`` (log-spaced for ``"log"``
      sampling, mirrored for ``"reverse_log"``); ``Int`` points are rounded,
      repeats dropped.

    Conditional hyperparameters: a coordinate is only varied when it is
    active under the incumbent's values. Changing a parent switches its
    children on (at their defaults, or their incumbent values when they were
    already active) or off (their values are dropped, as keras-tuner requires
    for inactive hyperparameters). Hyperparameters that keras-tuner discovers
    later (the space is filled while the first models are built) are
    appended to the coordinate order and visited in the current round.

    Invariants:

    1. Every trial after the first differs from the incumbent of the moment
       it is proposed in exactly one active, non-``Fixed`` hyperparameter
       (plus the children whose activity that change switches).
    2. No set of active values is proposed twice, across rounds, whatever
       the earlier trial's outcome (keras-tuner's hash of the active values,
       ``_tried_so_far``): a failed trial counts as evaluated. Re-running an
       ``INVALID`` trial is keras-tuner's retry mechanism
       (``max_retries_per_trial``), not the walk's.
    3. The incumbent only changes to a ``COMPLETED`` trial whose score is
       strictly better (``objective.better_than``); ties keep the earlier
       trial; failed, invalid (NaN score) and running trials never become
       the incumbent. Its score is therefore that of ``get_best_trials(1)[0]``
       once a trial has completed.
    4. While trials are running and the next step depends on their results
       (the current coordinate is used up, or the round is over), the status
       is ``"IDLE"``: a parallel worker waits instead of moving on with a
       stale incumbent.
    5. The walk is deterministic (``seed`` is not used by it): the trials, the
       coordinate order, the coordinate index, the round and the incumbent
       determine the next proposal, and all of them are saved by `get_state`,
       so a search reloaded mid-way proposes exactly what it would have
       proposed without the interruption.
    6. It terminates: each proposal is new and the candidates are finite.

    Args:
        objective: A string, a ``keras_tuner.Objective`` or a list of them,
            as for every keras-tuner Oracle (the direction of a string is
            inferred). None means minimizing the value returned by the
            HyperModel's ``fit``.
        max_trials: Most trials to run; None runs until the walk stops.
        max_values_per_hp: Most candidate values of one numerical
            hyperparameter (>= 2; ``Choice`` always uses all its values).
        seed: Random seed kept for keras-tuner compatibility (the base Oracle
            uses it; the greedy walk is deterministic).
        hyperparameters: Optional ``keras_tuner.HyperParameters`` registering
            (or overriding) hyperparameters in advance.
        allow_new_entries: Whether the HyperModel may request hyperparameters
            not in ``hyperparameters``.
        tune_new_entries: Whether such new hyperparameters are tuned (else
            they keep their default).
        max_retries_per_trial: Times an ``INVALID`` trial is run again before
            it is marked ``FAILED``.
        max_consecutive_failed_trials: Consecutive ``FAILED`` trials that
            stop the search with a ``RuntimeError`` (a broken setup).

    Raises:
        ValueError: For an argument of the wrong type or out of range, or
            when ``tune_new_entries`` or ``allow_new_entries`` is False
            without a ``hyperparameters`` search space.
    """

    def __init__(
        self,
        objective: Any = None,
        max_trials: int | None = 10,
        max_values_per_hp: int = 5,
        seed: int | None = None,
        hyperparameters: kt.HyperParameters | None = None,
        allow_new_entries: bool = True,
        tune_new_entries: bool = True,
        max_retries_per_trial: int = 0,
        max_consecutive_failed_trials: int = 3,
    ):
        if max_trials is not None:
            check_positive_int("max_trials", max_trials)
        # Two candidates at least: one evenly spaced point is not a search.
        max_values_per_hp = check_positive_int("max_values_per_hp", max_values_per_hp, minimum=2)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError(f"Received: seed={seed!r}; expected None or an integer.")
        if hyperparameters is not None and not isinstance(hyperparameters, kt.HyperParameters):
            raise ValueError(
                f"Received: hyperparameters={hyperparameters!r}; expected None or a "
                "keras_tuner.HyperParameters."
            )
        for name, flag in (
            ("allow_new_entries", allow_new_entries),
            ("tune_new_entries", tune_new_entries),
        ):
            if not isinstance(flag, bool):
                raise ValueError(f"Received: {name}={flag!r}; expected True or False.")
            if not flag and hyperparameters is None:
                raise ValueError(
                    f"Received: {name}=False with hyperparameters=None; expected a "
                    "keras_tuner.HyperParameters search space when new entries are "
                    "not allowed or not tuned."
                )
        check_positive_int("max_retries_per_trial", max_retries_per_trial, minimum=0)
        check_positive_int("max_consecutive_failed_trials", max_consecutive_failed_trials)
        super().__init__(
            objective=objective,
            max_trials=max_trials,
            hyperparameters=hyperparameters,
            allow_new_entries=allow_new_entries,
            tune_new_entries=tune_new_entries,
            seed=seed,
            max_retries_per_trial=max_retries_per_trial,
            max_consecutive_failed_trials=max_consecutive_failed_trials,
        )
        self.max_values_per_hp = max_values_per_hp
        # Keys (`_coordinate_key`) of the non-Fixed hyperparameters, in the
        # order they are visited; new hyperparameters are appended.
        self._coordinates: list[str] = []
        self._coordinate_index = 0
        self._round = 0
        # The incumbent: best completed trial so far.
        self._best_trial_id: str | None = None
        self._best_score: float | None = None
        self._best_values: dict[str, Any] | None = None
        # The incumbent when the current round started: a round that ends
        # with the same incumbent ends the search.
        self._round_start_best_trial_id: str | None = None

    # -- public helpers -----------------------------------------------------

    @property
    def current_round(self) -> int:
        """The current round of the walk, from 0."""
        return self._round

    @property
    def current_coordinate(self) -> str | None:
        """The key of the hyperparameter being tuned (its name if unconditional).

        None between rounds, or before the search space is known.
        """
        if self._coordinate_index < len(self._coordinates):
            return self._coordinates[self._coordinate_index]
        return None

    @property
    def best_values(self) -> dict[str, Any] | None:
        """The incumbent's active values, or None while no trial has completed."""
        return None if self._best_values is None else dict(self._best_values)

    def candidate_values(self, hp: Any) -> list[Any]:
        """Return the values the walk tries for one hyperparameter, in order.

        Args:
            hp: A keras-tuner ``HyperParameter`` (``Choice``, ``Boolean``,
                ``Int``, ``Float`` or ``Fixed``).

        Returns:
            The candidate values (empty for ``Fixed``): ``Int`` candidates are
            Python ints, ``Float`` candidates Python floats, all within
            ``[min_value, max_value]`` and on the ``step`` grid when there is one.

        Raises:
            ValueError: For another kind of hyperparameter.
        """
        return _candidate_values(hp, self.max_values_per_hp)

    # -- the walk -------------------------------------------------------------

    def populate_space(self, trial_id: str) -> dict[str, Any]:
        """Propose the next values of the greedy walk.

        Args:
            trial_id: The ID of the trial to fill.

        Returns:
            ``{"status": "RUNNING", "values": {...}}`` with the active values
            to try; ``{"status": "IDLE", "values": None}`` when the next step
            waits for running trials; ``{"status": "STOPPED", "values": None}``
            when a whole round left the incumbent unchanged.
        """
        self._sync_coordinates()
        if not self.start_order:
            return {"status": _Status.RUNNING, "values": self._assemble({}, None, None)}

        center = self._best_values if self._best_values is not None else {}
        center_space = self._space_with(center)
        while True:
            if self._coordinate_index >= len(self._coordinates):
                if self._best_trial_id == self._round_start_best_trial_id:
                    if self.ongoing_trials:
                        return {"status": _Status.IDLE, "values": None}
                    return {"status": _Status.STOPPED, "values": None}
                self._round += 1
                self._coordinate_index = 0
                self._round_start_best_trial_id = self._best_trial_id
                continue
            hp = self._find_hp(self._coordinates[self._coordinate_index])
            if hp is not None and center_space.is_active(hp):
                for value in self.candidate_values(hp):
                    values = self._assemble(center, hp, value)
                    if not self._duplicate(values):
                        return {"status": _Status.RUNNING, "values": values}
                if self.ongoing_trials:
                    # A running trial of this coordinate may still move the
                    # incumbent: the next coordinate must start from it.
                    return {"status": _Status.IDLE, "values": None}
            self._coordinate_index += 1

    @_synchronized
    def end_trial(self, trial: kt.engine.trial.Trial) -> None:
        """End a trial (see ``keras_tuner.Oracle.end_trial``) and update the incumbent.

        Args:
            trial: The trial to end, its status ``"COMPLETED"``, ``"INVALID"``
                or ``"FAILED"``.

        Raises:
            RuntimeError: When ``max_consecutive_failed_trials`` consecutive
                trials failed (raised by keras-tuner's Oracle).
        """
        super().end_trial(trial)
        ended = self.trials[trial.trial_id]
        if ended.status != _Status.COMPLETED or ended.score is None:
            return
        if math.isnan(ended.score):  # pragma: no cover - keras-tuner makes it INVALID
            return
        if self._best_score is None or self.objective.better_than(ended.score, self._best_score):
            self._best_trial_id = ended.trial_id
            self._best_score = float(ended.score)
            self._best_values = dict(ended.hyperparameters.values)
            # keras-tuner saved the Oracle before the incumbent changed.
            self.save()

    # -- state ----------------------------------------------------------------

    def get_state(self) -> dict[str, Any]:
        """Return the Oracle's state, the greedy walk's under the ``"greedy"`` key.

        Returns:
            keras-tuner's Oracle state (which holds the hashes of the values
            tried) plus the coordinate order, the coordinate index, the round,
            the incumbent (trial ID, score, values) and the incumbent at the
            start of the round.
        """
        state = super().get_state()
        state["greedy"] = {
            "coordinates": list(self._coordinates),
            "coordinate_index": self._coordinate_index,
            "round": self._round,
            "best_trial_id": self._best_trial_id,
            "best_score": self._best_score,
            "best_values": None if self._best_values is None else dict(self._best_values),
            "round_start_best_trial_id": self._round_start_best_trial_id,
        }
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore the state returned by `get_state`.

        Args:
            state: The state, as returned by `get_state` (after a JSON round
                trip or not).

        Raises:
            KeyError: When the state was not saved by a `GreedyOracle`
                (keras-tuner's ``reload`` turns it into a ``RuntimeError``).
        """
        super().set_state(state)
        greedy = state["greedy"]
        self._coordinates = list(greedy["coordinates"])
        self._coordinate_index = int(greedy["coordinate_index"])
        self._round = int(greedy["round"])
        self._best_trial_id = greedy["best_trial_id"]
        self._best_score = greedy["best_score"]
        values = greedy["best_values"]
        self._best_values = None if values is None else dict(values)
        self._round_start_best_trial_id = greedy["round_start_best_trial_id"]

    # -- internals ------------------------------------------------------------

    def _sync_coordinates(self) -> None:
        """Append the search space's new non-Fixed hyperparameters to the order."""
        known = set(self._coordinates)
        for hp in self.hyperparameters.space:
            if isinstance(hp, _hps.Fixed):
                continue
            key = _coordinate_key(hp)
            if key not in known:
                self._coordinates.append(key)
                known.add(key)

    def _find_hp(self, key: str) -> Any:
        """Return the hyperparameter of the search space with this key, or None."""
        for hp in self.hyperparameters.space:
            if _coordinate_key(hp) == key:
                return hp
        return None

    def _space_with(self, values: dict[str, Any]) -> kt.HyperParameters:
        """Return a copy of the search space holding ``values`` (for `is_active`)."""
        space = self.hyperparameters.copy()
        space.values = dict(values)
        return space

    def _assemble(self, center: dict[str, Any], changed: Any, value: Any) -> dict[str, Any]:
        """Return the active values of ``center`` with one hyperparameter changed.

        Args:
            center: Active values (the incumbent's), possibly missing some
                hyperparameters (discovered later, or inactive in it).
            changed: The hyperparameter to set to ``value``; None for none.
            value: Its new value.

        Returns:
            A value for every hyperparameter active under the result, and
            for no other: ``value`` for ``changed``, the center's value for
            a hyperparameter active in the center, else the default.
        """
        changed_key = None if changed is None else _coordinate_key(changed)
        center_space = self._space_with(center)
        result = self.hyperparameters.copy()
        result.values = {}
        # keras-tuner keeps parents before their children in `space`, so
        # each condition is decided by values already set.
        for hp in result.space:
            if not result.is_active(hp):
                continue
            if changed_key is not None and _coordinate_key(hp) == changed_key:
                result.values[hp.name] = value
            elif hp.name in center and center_space.is_active(hp):
                result.values[hp.name] = center[hp.name]
            else:
                result.values[hp.name] = hp.default
        return dict(result.values)

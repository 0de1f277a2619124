"""The job model is the one source of the states for Python and for the store's Lua scripts."""

from __future__ import annotations

import json

from movie_gen.store.job_model import (
    FINAL_STATES,
    RUN_STARTS,
    STATUS_CODES,
    TRANSITIONS,
    JobState,
    UnitStatus,
    lua_constants,
)
from movie_gen.store.units import read_status_line, status_line


def test_states_are_plain_text_and_only_a_new_run_leaves_a_final_one():
    assert FINAL_STATES == ("completed", "partial", "failed", "cancelled")
    assert json.dumps([JobState.QUEUED, UnitStatus.RETRYING]) == '["queued", "retrying"]'
    assert set(TRANSITIONS) == set(JobState)
    assert all(TRANSITIONS[s] <= RUN_STARTS for s in FINAL_STATES)
    reachable = {JobState.QUEUED}
    for _ in JobState:
        reachable |= {n for s in reachable for n in TRANSITIONS[s]}
    assert reachable == set(JobState)


def test_the_lua_constants_come_from_the_model():
    lua = lua_constants()
    assert "local FINAL = {completed = true, partial = true, failed = true, cancelled = true}" in lua
    assert all(f"{status} = '{code}'" in lua for status, code in STATUS_CODES.items())
    assert all(f"{name} = '{name}'" in lua for name in [*JobState, *UnitStatus, "bible"])


def test_status_line_round_trip():
    units = [{"set_number": 2, "status": "retrying", "attempts": [{}] * 3},
             {"set_number": 1, "status": "success", "attempts": [{}]}, {"status": "running"}]
    line = status_line(units)
    assert line == "s01y03"
    assert read_status_line(line, 3) == ({1: "success", 2: "retrying", 3: "pending"}, {1: 1, 2: 3, 3: 0})
